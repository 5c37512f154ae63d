"""Single-range ``Range`` header parsing (RFC 9110 §14.1.2)."""

from __future__ import annotations

import re

from dangan.errors import RangeNotSatisfiable

# At most 19 digits: larger positions exceed any object (and int() of huge digit strings
# is refused by Python), so such a header is treated as malformed and ignored.
_RANGE = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The half-open byte range ``[start, end)`` asked for, or ``None`` for the whole content.

    Multi-range and malformed headers are ignored (RFC 9110 §14.2 lets a server ignore
    Range), so the whole content is served; an unsatisfiable range raises.
    """
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix range: the last N bytes
        length = int(last)
        if length == 0:
            raise _unsatisfiable("an empty suffix range", size)
        return max(size - length, 0), size
    start = int(first)
    end = size if not last else min(int(last) + 1, size)
    if last and int(last) < start:
        return None
    if start >= size:
        raise _unsatisfiable(f"the range starts beyond the {size} bytes of content", size)
    return start, end


def _unsatisfiable(detail: str, size: int) -> RangeNotSatisfiable:
    # RFC 9110 §14.4: a 416 names the current length as "bytes */<length>".
    return RangeNotSatisfiable(detail, headers={"Content-Range": f"bytes */{size}"}, size=size)
