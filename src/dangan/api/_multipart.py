"""A streaming ``multipart/form-data`` reader (RFC 7578 on RFC 2046 §5.1.1).

Uploads go through here on the event loop, one chunk of the body at a time, so the part
data is found with ``bytes.find`` for the delimiter and handed on as views of the chunk
that carried it, never byte by byte (a general-purpose parser's per-byte state machine
cost a 100 KB upload about as much as all of dangan's own checks). Only what an upload
form needs is accepted: the parts' headers are read (Content-Disposition for the field
name), the preamble and epilogue are skipped, and anything else malformed is refused.

The body is hostile until proved otherwise, and may come a byte at a time: nothing is
read twice except a part's header block while it is incomplete (at most
:data:`MAX_HEADER_BYTES`), and a kept remainder is never longer than the delimiter
otherwise. As RFC 2046 §5.1.1 asks, the boundary matches wherever it follows a CRLF,
whatever comes after it on the line; a delimiter line with anything but padding after the
boundary is refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from python_multipart.multipart import parse_options_header

from dangan.errors import InvalidRequest

#: RFC 2046 §5.1.1: a boundary is 1 to 70 characters.
MAX_BOUNDARY = 70
#: Upper bound of one part's header block, and of the number of its header lines.
MAX_HEADER_BYTES = 8 * 1024
MAX_HEADER_LINES = 16
#: Upper bound of the transport padding (spaces and tabs) after a boundary.
MAX_PADDING = 1024

_PREAMBLE, _AFTER_BOUNDARY, _PADDING, _HEADERS, _DATA, _END = range(6)
_CRLF = b"\r\n"


class MultipartReader:
    """Feeds a ``multipart/form-data`` body, chunk by chunk, to three callbacks:

    - ``begin(name, has_filename)`` when a part's headers are complete (``name`` is the
      Content-Disposition ``name``, or ``None``),
    - ``data(view)`` for each piece of that part's content (a read-only view, valid
      as long as the caller keeps it: the bytes it views are never changed),
    - after the closing delimiter, :attr:`ended` is true; what follows is ignored.

    Errors in the body are :class:`InvalidRequest`; so is a boundary RFC 2046 does not allow.
    """

    def __init__(
        self,
        boundary: bytes,
        *,
        begin: Callable[[str | None, bool], None],
        data: Callable[[memoryview], None],
    ) -> None:
        if not 1 <= len(boundary) <= MAX_BOUNDARY:
            raise InvalidRequest(
                f"malformed multipart header: the boundary must be 1 to {MAX_BOUNDARY} "
                f"characters, not {len(boundary)}"
            )
        self._dash = b"--" + boundary
        self._delimiter = _CRLF + self._dash
        self._begin, self._data = begin, data
        self._state = _PREAMBLE
        self._pending = b""  # bytes not yet consumed: too few to decide what they are
        self._started = False  # whether any of the body was consumed
        self._padding = 0  # transport padding after the current boundary so far
        self.ended = False
        """Whether the closing delimiter has been read."""

    def feed(self, chunk: bytes) -> None:
        """Take the next piece of the body."""
        if self._state == _END:
            return
        if not isinstance(chunk, bytes):
            chunk = bytes(chunk)  # the views handed on must never change
        pending, self._pending = self._pending, b""
        if pending and self._state == _DATA and len(chunk) >= len(self._delimiter) - 1:
            buf, pos = chunk, self._data_across(pending, chunk)  # no copy of the chunk
        else:
            buf, pos = (pending + chunk if pending else chunk), 0
        size = len(buf)
        while pos < size or self._state == _DATA:
            if self._state == _DATA:
                pos = self._read_data(buf, pos)
                if self._state == _DATA:  # the rest is kept until more arrives
                    return
            elif self._state == _PREAMBLE:
                pos = self._skip_preamble(buf, pos)
            elif self._state == _AFTER_BOUNDARY:
                pos = self._after_boundary(buf, pos)
            elif self._state == _PADDING:
                pos = self._skip_padding(buf, pos)
            elif self._state == _HEADERS:
                pos = self._read_headers(buf, pos)
            else:  # _END: the epilogue is ignored
                return
            if pos < 0:  # undecided: keep the rest for the next chunk
                return

    def _keep(self, buf: bytes, pos: int) -> int:
        self._pending = buf[pos:]
        return -1

    def _skip_preamble(self, buf: bytes, pos: int) -> int:
        # The body starts with the first dash-boundary, or a preamble ends in CRLF before it.
        if not self._started:
            if buf.startswith(self._dash, pos):
                self._state = _AFTER_BOUNDARY
                return pos + len(self._dash)
            if len(buf) - pos < len(self._dash) and self._dash.startswith(buf[pos:]):
                return self._keep(buf, pos)
            self._started = True  # a preamble: only a delimiter (CRLF first) ends it
        found = buf.find(self._delimiter, pos)
        if found < 0:
            # Discard the preamble, keeping what may be the start of the delimiter.
            return self._keep(buf, max(pos, len(buf) - len(self._delimiter) + 1))
        self._state = _AFTER_BOUNDARY
        return found + len(self._delimiter)

    def _after_boundary(self, buf: bytes, pos: int) -> int:
        # close-delimiter := delimiter "--"; else transport-padding (LWSP) then CRLF.
        if len(buf) - pos < 2:
            return self._keep(buf, pos)
        if buf.startswith(b"--", pos):
            self._state, self.ended = _END, True
            return len(buf)
        self._state, self._padding = _PADDING, 0
        return pos

    def _skip_padding(self, buf: bytes, pos: int) -> int:
        # Padding is consumed as it comes (never kept and scanned again), up to a limit.
        window = buf[pos : pos + MAX_PADDING + 1]
        end = pos + len(window) - len(window.lstrip(b" \t"))
        self._padding += end - pos
        if self._padding > MAX_PADDING:
            raise InvalidRequest("malformed multipart body: padding after a boundary is too long")
        if end == len(buf):
            return end
        if buf.startswith(_CRLF, end):
            self._state = _HEADERS
            return end + 2
        if end == len(buf) - 1 and buf[end:] == b"\r":
            return self._keep(buf, end)
        raise InvalidRequest("malformed multipart body: a boundary is not followed by a line break")

    def _read_headers(self, buf: bytes, pos: int) -> int:
        if buf.startswith(_CRLF, pos):  # a part without headers
            block, after = b"", pos + 2
        else:
            end = buf.find(b"\r\n\r\n", pos)
            if end < 0:
                if len(buf) - pos > MAX_HEADER_BYTES:
                    raise InvalidRequest("malformed multipart body: a part's headers are too long")
                return self._keep(buf, pos)
            block, after = buf[pos:end], end + 4
        if len(block) > MAX_HEADER_BYTES:
            raise InvalidRequest("malformed multipart body: a part's headers are too long")
        name, has_filename = _disposition(block)
        self._state = _DATA
        self._begin(name, has_filename)
        return after

    def _data_across(self, pending: bytes, chunk: bytes) -> int:
        """Settle the bytes kept from the last chunk (fewer than the delimiter) with the
        start of ``chunk``, which is at least as long; where to go on in ``chunk``."""
        joint = pending + chunk[: len(self._delimiter) - 1]
        found = joint.find(self._delimiter)  # if anywhere, it starts within ``pending``
        if found < 0:
            self._data(memoryview(pending))
            return 0
        if found:
            self._data(memoryview(joint)[:found])
        self._state = _AFTER_BOUNDARY
        return found + len(self._delimiter) - len(pending)

    def _read_data(self, buf: bytes, pos: int) -> int:
        found = buf.find(self._delimiter, pos)
        if found < 0:
            # Hand on all but what may be the start of the delimiter.
            end = max(pos, len(buf) - len(self._delimiter) + 1)
            if end > pos:
                self._data(memoryview(buf)[pos:end])
            self._pending = buf[end:]
            return len(buf)
        if found > pos:
            self._data(memoryview(buf)[pos:found])
        self._state = _AFTER_BOUNDARY
        return found + len(self._delimiter)


# Content-Disposition as browsers and HTTP libraries send it (RFC 7578 §4.2): a type,
# then parameters that are tokens or quoted strings without escapes. Anything else
# (escapes, RFC 2231 "name*=") goes to python_multipart's general parser.
_PLAIN_DISPOSITION = re.compile(
    rb'[ \t]*[A-Za-z-]+[ \t]*(?:;[ \t]*[A-Za-z0-9_.-]+[ \t]*=[ \t]*(?:"[^"\\\r\n]*"|[^;\s"\\]+)[ \t]*)*;?[ \t]*'
)
_PARAMETER = re.compile(rb';[ \t]*([A-Za-z0-9_.-]+)[ \t]*=[ \t]*(?:"([^"]*)"|([^;\s"]+))')


def disposition_options(value: bytes) -> dict[bytes, bytes]:
    """The parameters of a Content-Disposition value, names in lower case (as
    ``python_multipart.multipart.parse_options_header`` gives them)."""
    if _PLAIN_DISPOSITION.fullmatch(value) is None:
        return parse_options_header(value)[1]
    return {
        match[1].lower(): match[2] if match[2] is not None else match[3]
        for match in _PARAMETER.finditer(value)
    }


def _disposition(block: bytes) -> tuple[str | None, bool]:
    """(field name, whether a filename is given) from a part's header block."""
    lines = block.split(_CRLF) if block else []
    if len(lines) > MAX_HEADER_LINES:
        raise InvalidRequest(f"malformed multipart body: a part has over {MAX_HEADER_LINES} headers")
    name: str | None = None
    has_filename = False
    for line in lines:
        field, colon, value = line.partition(b":")
        if not colon or not field or field[:1] in b" \t" or field.strip() != field:
            raise InvalidRequest("malformed multipart body: a part header is not 'Name: value'")
        if field.lower() == b"content-disposition":
            options = disposition_options(value.strip())
            raw = options.get(b"name")
            name = raw.decode("utf-8", "replace") if raw is not None else None
            has_filename = b"filename" in options
    return name, has_filename
