"""Private: the licence QR code, segno's encoding with a faster choice of data mask.

ISO/IEC 18004:2015 §7.8.3 picks, of the eight data masks, the one whose symbol scores the
fewest penalty points. segno does this in pure Python, one module at a time: about 45 ms
for a version 15 symbol, more than the whole licence page may take. Here segno encodes
once with mask 0; the other seven symbols are derived from it by XOR-ing whole rows held
as integers (a mask only flips data modules, §7.8.2, and the format information,
§7.9.1), and are scored with the rules and scoring input segno uses, so the choice, and
the symbol, are the ones ``segno.make_qr(url, error="q", boost_error=False)`` would give.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import segno

_TO_ASCII = bytes.maketrans(b"\x00\x01", b"01")
_FROM_ASCII = bytes.maketrans(b"01", b"\x00\x01")

# ISO/IEC 18004:2015 Annex E, Table E.1: alignment pattern centres, versions 2 to 15.
_ALIGNMENT_CENTRES = {
    2: (6, 18),
    3: (6, 22),
    4: (6, 26),
    5: (6, 30),
    6: (6, 34),
    7: (6, 22, 38),
    8: (6, 24, 42),
    9: (6, 26, 46),
    10: (6, 28, 50),
    11: (6, 30, 54),
    12: (6, 32, 58),
    13: (6, 34, 62),
    14: (6, 26, 46, 66),
    15: (6, 26, 48, 70),
}
MAX_VERSION = max(_ALIGNMENT_CENTRES)

# ISO/IEC 18004:2015 Table 10: the data mask conditions, i = row, j = column.
_MASKS = (
    lambda i, j: (i + j) % 2 == 0,
    lambda i, j: i % 2 == 0,
    lambda i, j: j % 3 == 0,
    lambda i, j: (i + j) % 3 == 0,
    lambda i, j: (i // 2 + j // 3) % 2 == 0,
    lambda i, j: (i * j) % 2 + (i * j) % 3 == 0,
    lambda i, j: ((i * j) % 2 + (i * j) % 3) % 2 == 0,
    lambda i, j: ((i + j) % 2 + (i * j) % 3) % 2 == 0,
)


@dataclass(frozen=True)
class QrSymbol:
    """A QR code symbol, error correction level Q, without its quiet zone."""

    version: int
    """The version, 1 to 40: a symbol is 17 + 4 × version modules across."""
    mask: int
    """The data mask pattern, 0 to 7 (§7.8.2)."""
    matrix: tuple[bytearray, ...]
    """One bytearray per row, 1 = dark module."""


class QrTooLarge(ValueError):
    """The data needs a larger version than allowed."""

    def __init__(self, version: int, max_version: int) -> None:
        super().__init__(f"the data needs a version {version} QR code; at most {max_version}")
        self.version = version


def encode(data: str, *, max_version: int = MAX_VERSION) -> QrSymbol:
    """``data`` as a level-Q QR symbol, as segno would make it; raises segno's errors
    (ValueErrors) and :class:`QrTooLarge`."""
    if max_version > MAX_VERSION:
        raise ValueError(f"versions above {MAX_VERSION} are not supported")
    base = segno.make_qr(data, error="q", boost_error=False, mask=0)
    if base.version > max_version:
        raise QrTooLarge(base.version, max_version)
    n = len(base.matrix)
    data_mask, reserved, format_diff = _tables(base.version)
    rows = [int(bytes(r).translate(_TO_ASCII), 2) for r in base.matrix]
    # segno scores a symbol before its format and version information are written.
    unformatted = [r & ~res for r, res in zip(rows, reserved)]
    best, best_score = 0, -1
    for m in range(8):
        flip = [a ^ b for a, b in zip(data_mask[0], data_mask[m])]
        score = _penalty([r ^ f for r, f in zip(unformatted, flip)], n)
        if best_score < 0 or score < best_score:
            best, best_score = m, score
    final = [
        r ^ a ^ b ^ f for r, a, b, f in zip(rows, data_mask[0], data_mask[best], format_diff[best])
    ]
    matrix = tuple(bytearray(format(r, f"0{n}b").encode().translate(_FROM_ASCII)) for r in final)
    return QrSymbol(base.version, best, matrix)


def _penalty(rows: list[int], n: int) -> int:
    """ISO/IEC 18004:2015 §7.8.3.1, Table 11 (N1 = 3, N2 = 3, N3 = 40, N4 = 10), counted
    the way segno counts, on rows held as integers (bit n-1 = column 0), all columns at
    once where the rule runs down a column."""
    full = (1 << n) - 1
    pair = full >> 1
    score = 0
    # N1 and N2 along rows: t marks a module equal to its right neighbour; a run of
    # 5 + i equal modules is 4 + i marks in a row and scores 3 + i.
    for r in rows:
        t = ~(r ^ (r >> 1)) & pair
        s4 = t & (t >> 1) & (t >> 2) & (t >> 3)
        score += s4.bit_count() + 2 * (s4 & ~(s4 >> 1)).bit_count() + _n3(r, n)
    same_below = [~(a ^ b) & full for a, b in itertools.pairwise(rows)]
    previous = 0
    for i in range(n - 4):  # N1 down the columns, the same counting on the marks
        s4 = same_below[i] & same_below[i + 1] & same_below[i + 2] & same_below[i + 3]
        score += s4.bit_count() + 2 * (s4 & ~previous).bit_count()
        previous = s4
    for (a, b), same in zip(itertools.pairwise(rows), same_below, strict=True):  # N2: 2 x 2 blocks
        score += 3 * (~(a ^ (a >> 1)) & ~(b ^ (b >> 1)) & same & pair).bit_count()
    score += _n3_columns(rows, n)
    dark = sum(r.bit_count() for r in rows)
    return score + 10 * int(abs(dark / (n * n) * 100 - 50) / 5)


def _n3(r: int, n: int) -> int:
    """N3 along one row: 1:1:3:1:1 with 4 light modules (or the edge) before or after."""
    # Bit e of ``found``: the pattern's last module is in bit e (its first in e + 6).
    found = (r >> 6) & ~(r >> 5) & (r >> 4) & (r >> 3) & (r >> 2) & ~(r >> 1) & r
    found &= (1 << (n - 6)) - 1
    if not found:
        return 0
    light = ~((r >> 7) | (r >> 8) | (r >> 9) | (r >> 10)) | ~(
        (r << 1) | (r << 2) | (r << 3) | (r << 4)
    )
    hits = [(n - 7 - e, bool(light >> e & 1)) for e in _set_bits(found)]
    return _n3_score(sorted(hits))


def _n3_columns(rows: list[int], n: int) -> int:
    """N3 down every column at once; bit j of a row integer is column n-1-j."""
    padded = [0] * 4 + rows + [0] * 4
    hits: dict[int, list[tuple[int, bool]]] = {}
    for i in range(n - 6):
        a, b, c, d, e, f, g = padded[i + 4 : i + 11]
        found = a & ~b & c & d & e & ~f & g
        if found:
            before = ~(padded[i] | padded[i + 1] | padded[i + 2] | padded[i + 3])
            after = ~(padded[i + 11] | padded[i + 12] | padded[i + 13] | padded[i + 14])
            counted = (before | after) & found
            for j in _set_bits(found):
                hits.setdefault(j, []).append((i, bool(counted >> j & 1)))
    return sum(_n3_score(h) for h in hits.values())


def _set_bits(x: int) -> list[int]:
    bits = []
    while x:
        low = x & -x
        bits.append(low.bit_length() - 1)
        x ^= low
    return bits


def _n3_score(hits: list[tuple[int, bool]]) -> int:
    """segno's scan along a line: after a scored pattern it resumes 7 modules on, after
    an unscored one 4 modules on; ``hits`` are (start, scores) in reading order."""
    score, resume = 0, 0
    for start, counted in hits:
        if start >= resume:
            score += 40 if counted else 0
            resume = start + (7 if counted else 4)
    return score


@functools.cache
def _tables(version: int) -> tuple[list[list[int]], list[int], list[list[int]]]:
    """Per version: each mask's flips of data modules, the format/version/dark module
    positions, and each mask's format information XOR mask 0's, as row integers."""
    n = 17 + 4 * version
    function = [[False] * n for _ in range(n)]

    def mark(rows: range, cols: range, grid: list[list[bool]] = function) -> None:
        for i in rows:
            for j in cols:
                grid[i][j] = True

    # Finder patterns, separators and format information (§6.3.3, §6.3.4, §7.9.1).
    mark(range(9), range(9))
    mark(range(9), range(n - 8, n))
    mark(range(n - 8, n), range(9))
    mark(range(6, 7), range(n))  # timing patterns (§6.3.5)
    mark(range(n), range(6, 7))
    centres = _ALIGNMENT_CENTRES.get(version, ())  # version 1 has none
    corners = (
        {(centres[0], centres[0]), (centres[0], centres[-1]), (centres[-1], centres[0])}
        if centres
        else set()
    )
    for ci in centres:
        for cj in centres:
            if (ci, cj) not in corners:  # §6.3.6: none where a finder pattern is
                mark(range(ci - 2, ci + 3), range(cj - 2, cj + 3))
    reserved = [[False] * n for _ in range(n)]
    for i, j in _format_positions(n):
        reserved[i][j] = True
    reserved[n - 8][8] = True  # the dark module
    if version >= 7:  # version information (§7.10)
        mark(range(6), range(n - 11, n - 8))
        mark(range(n - 11, n - 8), range(6))
        mark(range(6), range(n - 11, n - 8), reserved)
        mark(range(n - 11, n - 8), range(6), reserved)
    data_mask = [
        _row_ints([[not function[i][j] and cond(i, j) for j in range(n)] for i in range(n)])
        for cond in _MASKS
    ]
    format_diff = []
    for m in range(8):
        bits = _format_bits(0) ^ _format_bits(m)
        grid = [[False] * n for _ in range(n)]
        for k, (i, j) in enumerate(_format_positions(n)):
            grid[i][j] = bool(bits >> _FORMAT_BIT_ORDER[k] & 1)
        format_diff.append(_row_ints(grid))
    return data_mask, _row_ints(reserved), format_diff


# §7.9.1 Figure 25: where format information bit k goes, both copies (bit 0 = LSB).
_FORMAT_BIT_ORDER = (*range(8), *range(14, 6, -1), *range(8), *range(14, 7, -1))


def _format_positions(n: int) -> list[tuple[int, int]]:
    """Row and column of each format bit, in :data:`_FORMAT_BIT_ORDER`'s order."""
    column_8 = [(i, 8) for i in (0, 1, 2, 3, 4, 5, 7, 8)]  # bits 0-7, skipping timing
    row_8 = [(8, j) for j in (0, 1, 2, 3, 4, 5, 7, 8)]  # bits 14-7
    top_right = [(8, n - 1 - k) for k in range(8)]  # bits 0-7
    bottom_left = [(n - 1 - k, 8) for k in range(7)]  # bits 14-8; above them the dark module
    return column_8 + row_8 + top_right + bottom_left


def _format_bits(mask: int) -> int:
    """§7.9.1: level Q (binary 11) and the mask, BCH(15,5)-coded and XOR-ed with 0x5412."""
    data = 0b11 << 3 | mask
    rem = data << 10
    for bit in range(14, 9, -1):
        if rem >> bit & 1:
            rem ^= 0x537 << (bit - 10)
    return (data << 10 | rem) ^ 0x5412


def _row_ints(grid: list[list[bool]]) -> list[int]:
    return [int("".join("1" if cell else "0" for cell in row), 2) for row in grid]
