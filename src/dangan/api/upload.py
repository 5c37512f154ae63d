"""Streaming ``multipart/form-data`` reception straight into an object writer.

The body is never held in memory: the ``file`` part is hashed and written chunk by chunk
as it arrives, so memory stays flat for any size and a request over the limit is cut off
as soon as it crosses it. Content that is only examined, never stored (a PDF sent for
signature validation), is collected in memory by :func:`receive_in_memory` under a limit
of its own.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

from python_multipart.multipart import parse_options_header
from starlette.requests import ClientDisconnect, Request

from dangan.api._multipart import MultipartReader
from dangan.documents import SNIFF_BYTES
from dangan.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from dangan.storage import ObjectStore, ObjectWriter, StoredObject

#: Upper bound of the ``metadata`` field.
METADATA_LIMIT = 64 * 1024
#: Allowance for multipart framing and the metadata field on top of the file limit.
ENVELOPE_ALLOWANCE = METADATA_LIMIT + 64 * 1024


#: Uploads up to this size are held in memory and written to the store in one go.
MEMORY_SPOOL = 1024 * 1024
#: Pieces of at least this size are held as they came; smaller ones are copied together.
KEEP_AS_VIEW = 16 * 1024


class SpoolingWriter:
    """An :class:`ObjectWriter` that keeps small content in memory.

    Most uploads are small: holding them until the end lets the whole store write (create,
    write, fsync, link) happen in one worker-thread call instead of touching the disk
    from the event loop chunk by chunk. Past :data:`MEMORY_SPOOL` bytes it opens a store
    writer and streams, so memory stays bounded for any size.

    Large chunks held in memory are kept as they came (views of the request body's
    immutable bytes are not copied) and joined once, when written; small ones are copied
    together, so that a body sent in tiny pieces does not cost a Python object per piece.
    """

    def __init__(
        self, store: ObjectStore, *, limit: int = MEMORY_SPOOL, digest: bool = False
    ) -> None:
        """With ``digest``, the SHA-256 is also kept as the content arrives, so that
        :meth:`sha256` can answer before the commit."""
        self._store = store
        self._limit = limit
        self._chunks: list[bytes | memoryview | bytearray] = []
        self._buffered = 0
        self._writer: ObjectWriter | None = None
        self._size = 0
        self._digest = hashlib.sha256() if digest else None

    @property
    def size(self) -> int:
        return self._size

    def sha256(self) -> str:
        """Hex SHA-256 of the content so far (needs ``digest=True``)."""
        if self._digest is None:
            raise ValueError("this writer was not asked to keep a digest")
        return self._digest.hexdigest()

    def write(self, chunk: bytes | memoryview) -> None:
        self._size += len(chunk)
        if self._digest is not None:
            self._digest.update(chunk)
        if self._writer is not None:
            self._writer.write(chunk)
            return
        immutable = isinstance(chunk, bytes) or (isinstance(chunk, memoryview) and chunk.readonly)
        if immutable and len(chunk) >= KEEP_AS_VIEW:
            self._chunks.append(chunk)
        elif self._chunks and isinstance(self._chunks[-1], bytearray):
            self._chunks[-1] += chunk
        else:
            self._chunks.append(bytearray(chunk))  # a copy: a mutable buffer may change
        self._buffered += len(chunk)
        if self._buffered > self._limit:
            self._writer = self._store.open_writer()
            self._writer.write(self._take_buffered())

    def commit(self) -> StoredObject:
        """Write (if still in memory) and commit; blocking, so call it from a worker thread."""
        if self._writer is None:
            self._writer = self._store.open_writer()
            self._writer.write(self._take_buffered())
        return self._writer.commit()

    def abort(self) -> None:
        self._chunks, self._buffered = [], 0
        if self._writer is not None:
            self._writer.abort()

    def _take_buffered(self) -> bytes | memoryview | bytearray:
        chunks, self._chunks, self._buffered = self._chunks, [], 0
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class _Sink(Protocol):
    """Where the ``file`` part goes: a :class:`SpoolingWriter` or a :class:`_MemorySink`."""

    @property
    def size(self) -> int: ...

    def write(self, chunk: bytes) -> None: ...


class _MemorySink:
    """Collects the ``file`` part in memory (for content that is examined, never stored)."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    @property
    def size(self) -> int:
        return len(self.buffer)

    def write(self, chunk: bytes) -> None:
        self.buffer += chunk


@dataclass
class ReceivedUpload:
    """What the multipart body carried; the writer is uncommitted."""

    writer: SpoolingWriter
    """The ``file`` part, received but not yet committed."""
    head: bytes
    """The first :data:`SNIFF_BYTES` of the file, for media type sniffing."""
    metadata: bytes
    """The raw ``metadata`` field."""


class _UploadParser:
    """Feeds a multipart body into ``writer``, enforcing the limits; only ``fields`` may
    appear, each at most once."""

    def __init__(
        self,
        boundary: bytes,
        writer: _Sink,
        max_bytes: int,
        *,
        fields: tuple[str, ...] = ("file", "metadata"),
    ) -> None:
        self.writer = writer
        self.max_bytes = max_bytes
        self.fields = fields
        self.head = bytearray()
        self.metadata = bytearray()
        self.seen: set[str] = set()
        self.name: str | None = None
        self.received = 0
        self.reader = MultipartReader(boundary, begin=self._begin, data=self._data)

    @property
    def ended(self) -> bool:
        """Whether the closing delimiter was read."""
        return self.reader.ended

    def feed(self, chunk: bytes) -> None:
        # The parts are limited one by one; the body as a whole (a preamble, an epilogue,
        # padding) by the same allowance as a declared Content-Length.
        self.received += len(chunk)
        _check_envelope(self.received, self.max_bytes)
        self.reader.feed(chunk)

    def _begin(self, name: str | None, _has_filename: bool) -> None:
        if name not in self.fields:
            expected = " and ".join(repr(f) for f in self.fields)
            raise InvalidRequest(f"unexpected form field {name!r}: send only {expected}")
        if name in self.seen:
            raise InvalidRequest(f"the form field {name!r} appears more than once")
        self.seen.add(name)
        self.name = name

    def _data(self, chunk: memoryview) -> None:
        # ``chunk`` views bytes that never change: a sink may keep it without a copy.
        if self.name == "file":
            if self.writer.size + len(chunk) > self.max_bytes:
                raise PayloadTooLarge(
                    f"the file exceeds the limit of {self.max_bytes} bytes", limit=self.max_bytes
                )
            if len(self.head) < SNIFF_BYTES:
                self.head += chunk[: SNIFF_BYTES - len(self.head)]
            self.writer.write(chunk)
        else:
            if len(self.metadata) + len(chunk) > METADATA_LIMIT:
                raise InvalidRequest(f"the metadata field exceeds {METADATA_LIMIT} bytes")
            self.metadata += chunk


def _boundary(request: Request) -> bytes:
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise InvalidRequest("send the upload as multipart/form-data with 'file' and 'metadata'")
    return boundary


def _check_declared_length(request: Request, max_bytes: int) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit():
        _check_envelope(int(declared), max_bytes)


def _check_envelope(length: int, max_bytes: int) -> None:
    """:class:`PayloadTooLarge` for a body of ``length`` bytes (declared, or received so
    far) that a file of at most ``max_bytes`` and its form cannot make up."""
    if length > max_bytes + ENVELOPE_ALLOWANCE:
        raise PayloadTooLarge(f"the upload exceeds the limit of {max_bytes} bytes", limit=max_bytes)


async def receive_upload(
    request: Request, *, store: ObjectStore, max_bytes: int, digest: bool = False
) -> ReceivedUpload:
    """Stream the request body into a new (uncommitted) object.

    On any error the writer is aborted before the error propagates, so nothing is left.
    """
    boundary = _boundary(request)
    _check_declared_length(request, max_bytes)
    writer = SpoolingWriter(store, digest=digest)
    try:
        parser = _UploadParser(boundary, writer, max_bytes)
        await _read_multipart(request, parser)
        if "metadata" not in parser.seen:
            raise InvalidRequest("the form field 'metadata' is missing")
    except ClientDisconnect as exc:
        writer.abort()
        raise InvalidRequest("the client disconnected before the upload finished") from exc
    except BaseException:
        writer.abort()
        raise
    return ReceivedUpload(writer=writer, head=bytes(parser.head), metadata=bytes(parser.metadata))


async def receive_in_memory(request: Request, *, max_bytes: int, raw_media_type: str) -> bytes:
    """The file a request carries, held in memory: the ``file`` part of a
    ``multipart/form-data`` body, or the whole body when it is sent as ``raw_media_type``.

    Only for content that is examined and never stored (hence the memory): more than
    ``max_bytes`` is :class:`PayloadTooLarge` as soon as it arrives, any other
    Content-Type is :class:`UnsupportedMediaType`.
    """
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    is_multipart = content_type == b"multipart/form-data" and bool(boundary)
    if not is_multipart and content_type != raw_media_type.encode():
        raise UnsupportedMediaType(
            f"send multipart/form-data with a 'file' field, or the file itself as {raw_media_type}"
        )
    _check_declared_length(request, max_bytes)
    sink = _MemorySink()
    try:
        if is_multipart:
            parser = _UploadParser(boundary, sink, max_bytes, fields=("file",))
            await _read_multipart(request, parser)
        else:
            async for chunk in request.stream():
                if sink.size + len(chunk) > max_bytes:
                    raise PayloadTooLarge(
                        f"the file exceeds the limit of {max_bytes} bytes", limit=max_bytes
                    )
                sink.write(chunk)
    except ClientDisconnect as exc:
        raise InvalidRequest("the client disconnected before the upload finished") from exc
    return bytes(sink.buffer)


async def _read_multipart(request: Request, parser: _UploadParser) -> None:
    """Feed the whole body to ``parser``; the body must be complete and carry ``file``."""
    async for chunk in request.stream():
        parser.feed(chunk)
    if not parser.ended:
        raise InvalidRequest("the multipart body ends before its closing boundary")
    if "file" not in parser.seen:
        raise InvalidRequest("the form field 'file' is missing")
