"""The streaming multipart reader: the same parts however the body is cut into chunks."""

from __future__ import annotations

import hashlib

import pytest

from dangan.api._multipart import MAX_HEADER_BYTES, MultipartReader
from dangan.errors import InvalidRequest

BOUNDARY = b"b0und4ry"


def body(*parts: tuple[bytes, bytes], boundary: bytes = BOUNDARY, preamble: bytes = b"",
         epilogue: bytes = b"") -> bytes:
    """A multipart body of (header block, content) parts."""
    out = preamble + (b"\r\n" if preamble else b"")
    for headers, content in parts:
        out += b"--" + boundary + b"\r\n" + headers + b"\r\n\r\n" + content + b"\r\n"
    return out + b"--" + boundary + b"--" + epilogue


def field(name: str, filename: str | None = None) -> bytes:
    disposition = f'Content-Disposition: form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    return disposition.encode()


def read(raw: bytes, cuts: list[int], boundary: bytes = BOUNDARY) -> tuple[list, bool]:
    """Feed ``raw`` cut at ``cuts``; ([(name, has_filename, content)], ended)."""
    parts: list[list] = []
    reader = MultipartReader(
        boundary,
        begin=lambda name, has_filename: parts.append([name, has_filename, b""]),
        data=lambda view: parts[-1].__setitem__(2, parts[-1][2] + bytes(view)),
    )
    edges = [0, *cuts, len(raw)]
    for start, end in zip(edges, edges[1:]):
        reader.feed(raw[start:end])
    return [tuple(p) for p in parts], reader.ended


# Content that looks like the delimiter in every way but one.
TRICKY = (b"\r\n--b0und4r" + b"\r\n-" + b"--b0und4ry" + b"\r\n\r\n--b0und4"
          + hashlib.shake_256(b"x").digest(300) + b"\r")
EXPECTED = [("metadata", False, b'{"a": 1}'), ("file", True, TRICKY)]
RAW = body((field("metadata"), b'{"a": 1}'), (field("file", "f.pdf") + b"\r\nContent-Type: a/b", TRICKY))


def test_whole_body() -> None:
    assert read(RAW, []) == (EXPECTED, True)


def test_every_single_cut() -> None:
    for cut in range(1, len(RAW)):
        assert read(RAW, [cut]) == (EXPECTED, True), cut


def test_one_byte_at_a_time() -> None:
    assert read(RAW, list(range(1, len(RAW)))) == (EXPECTED, True)


def test_preamble_epilogue_padding_and_empty_parts() -> None:
    raw = body((field("file", "x"), b""), preamble=b"ignore me\r\n--b0und4r", epilogue=b"\r\ntrailing")
    raw = raw.replace(b"--b0und4ry\r\nContent", b"--b0und4ry \t\r\nContent")
    assert read(raw, []) == ([("file", True, b"")], True)
    assert read(raw, list(range(1, len(raw)))) == ([("file", True, b"")], True)


def test_a_part_without_headers_has_no_name() -> None:
    raw = b"--" + BOUNDARY + b"\r\n\r\nhello\r\n--" + BOUNDARY + b"--\r\n"
    assert read(raw, [len(raw) - 30]) == ([(None, False, b"hello")], True)


def test_an_unfinished_body_has_not_ended() -> None:
    parts, ended = read(RAW[:-4], [])
    assert not ended
    assert parts[-1][2] == TRICKY[: len(parts[-1][2])]


@pytest.mark.parametrize(
    "raw",
    [
        body((field("file"), b"x")).replace(b"ry\r\nContent", b"ryXContent", 1),
        body((b"Content-Disposition form-data", b"x")),
        body((b" Content-Disposition: form-data", b"x")),
        body((b"\r\n".join([b"X-A: 1"] * 17), b"x")),
        b"--" + BOUNDARY + b"\r\nX-Long: " + b"a" * MAX_HEADER_BYTES,
    ],
    ids=["no line break after the boundary", "header without colon", "folded header",
         "too many headers", "headers too long"],
)
def test_malformed_bodies_are_invalid_requests(raw: bytes) -> None:
    with pytest.raises(InvalidRequest, match="malformed multipart body"):
        read(raw, [])


@pytest.mark.parametrize("boundary", [b"", b"b" * 71])
def test_boundaries_outside_rfc_2046_are_refused(boundary: bytes) -> None:
    with pytest.raises(InvalidRequest, match="boundary must be 1 to 70"):
        MultipartReader(boundary, begin=lambda *_: None, data=lambda _: None)
