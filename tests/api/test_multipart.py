"""The streaming multipart reader: the same parts however the body is cut into chunks."""

from __future__ import annotations

import hashlib

import pytest

from python_multipart.multipart import parse_options_header

from dangan.api._multipart import MAX_HEADER_BYTES, MAX_PADDING, MultipartReader, disposition_options
from dangan.api.upload import ENVELOPE_ALLOWANCE, _MemorySink, _UploadParser
from dangan.errors import InvalidRequest, PayloadTooLarge

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


def outcome(raw: bytes, cuts: list[int]) -> object:
    """What reading ``raw`` cut at ``cuts`` gives: the parts, or the error's message."""
    try:
        return read(raw, cuts)
    except InvalidRequest as exc:
        return str(exc)


ODD_BODIES = {
    # A dash-boundary counts only at the very start of the body or after CRLF.
    "dash-boundary inside the preamble": (
        b"x--b0und4ry\r\n" + field("file", "f") + b"\r\n\r\nEVIL\r\n"
        + body((field("metadata"), b"{}"))
    ),
    "padding at the limit": RAW.replace(b"ry\r\nContent", b"ry" + b" " * MAX_PADDING + b"\r\nContent", 1),
    "padding over the limit": RAW.replace(b"ry\r\nContent", b"ry" + b"\t" * (MAX_PADDING + 1) + b"\r\nContent", 1),
    "padding then no line break": RAW.replace(b"ry\r\nContent", b"ry  \rContent", 1),
    "a lone CR in the content": body((field("file", "f"), b"a\rb\r\r\n-\r\n--")),
}


@pytest.mark.parametrize("raw", ODD_BODIES.values(), ids=ODD_BODIES.keys())
def test_the_outcome_does_not_depend_on_where_the_body_is_cut(raw: bytes) -> None:
    whole = outcome(raw, [])
    for cut in range(1, len(raw)):
        assert outcome(raw, [cut]) == whole, cut
    assert outcome(raw, list(range(1, len(raw)))) == whole


def test_the_outcomes_of_the_odd_bodies() -> None:
    results = {name: outcome(raw, []) for name, raw in ODD_BODIES.items()}
    assert results["dash-boundary inside the preamble"] == ([("metadata", False, b"{}")], True)
    assert results["padding at the limit"] == (EXPECTED, True)
    assert "padding after a boundary is too long" in results["padding over the limit"]
    assert "not followed by a line break" in results["padding then no line break"]
    assert results["a lone CR in the content"] == ([("file", True, b"a\rb\r\r\n-\r\n--")], True)


def test_an_upload_body_is_capped_whatever_the_parts_hold() -> None:
    # A preamble (or epilogue) is skipped, not kept, but not read without end either.
    parser = _UploadParser(BOUNDARY, _MemorySink(), 1000)
    parser.feed(b"p" * (1000 + ENVELOPE_ALLOWANCE))
    with pytest.raises(PayloadTooLarge):
        parser.feed(b"p")


@pytest.mark.parametrize(
    "value",
    [
        b'form-data; name="metadata"',
        b'form-data; name="file"; filename="1.pdf"',
        b'FORM-DATA; NAME="x"; Filename=""',
        b"form-data;name=x;filename=y",
        b'form-data; name = "x" ; filename = "a;b; name=evil.pdf"',
        b'form-data; name="\xe4\xb8\xad"; name="last"',
        b'form-data; name="a\\"b"',  # an escape: the general parser
        b"form-data; name=file; filename*=UTF-8''%E4%B8%AD.pdf",  # RFC 2231: likewise
        b"form-data",
        b"",
    ],
)
def test_content_disposition_reads_as_python_multipart_reads_it(value: bytes) -> None:
    assert disposition_options(value) == parse_options_header(value)[1]


def test_a_file_sent_in_tiny_pieces_is_held_compactly(tmp_path) -> None:
    import tracemalloc

    from dangan.api.upload import SpoolingWriter
    from dangan.storage.fs import FsObjectStore

    store = FsObjectStore(root=tmp_path / "objects")
    content = hashlib.shake_256(b"tiny").digest(300_000)
    writer = SpoolingWriter(store)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(0, 100_000):  # one byte per piece, as views of a larger body
            writer.write(memoryview(content)[i : i + 1])
        writer.write(memoryview(content)[100_000:])  # a large piece is kept as it came
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 300_000  # a view per byte would be tens of megabytes
    stored = writer.commit()
    assert b"".join(store.read(stored.sha256)) == content
