"""Transparency-log checkpoints, per C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint).

A checkpoint is the signed head of an RFC 9162 Merkle tree: a signed note (see
:mod:`dangan.ledger.note`) whose text is the log's origin, the tree size in decimal and
the base64 root hash, one per line, optionally followed by extension lines.

    DanganError
    ├── CheckpointFormatError     422 checkpoint_malformed
    └── CheckpointOriginMismatch  422 checkpoint_origin_mismatch

>>> from dangan.ledger.merkle import EMPTY_ROOT
>>> signer = NoteSigner.generate("example.com/log")
>>> note = sign_checkpoint(signer, Checkpoint("example.com/log", 0, EMPTY_ROOT))
>>> open_checkpoint(note, signer.verifier(), origin="example.com/log").size
0
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from dangan.errors import DanganError
from dangan.ledger.note import NoteSigner, NoteVerifier

#: Length of the root hash, a SHA-256 Merkle tree hash (RFC 9162 §2.1).
ROOT_SIZE = 32
#: Largest tree size; sizes are uint64 like RFC 9162 §4.10's ``tree_size``.
MAX_TREE_SIZE = 2**64 - 1

# tlog-checkpoint "Note text" item 2: ASCII decimal, no leading zeroes except "0" itself.
# 20 digits bound the text before int() converts it.
_TREE_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")
# A checkpoint is note text, so it holds no control characters but newline
# (signed-note "Format"); within one line, not even newline.
_LINE_FORBIDDEN = re.compile(r"[\x00-\x1f]")


class CheckpointFormatError(DanganError):
    """A checkpoint body, or the values meant for one, break tlog-checkpoint "Note text"."""

    code = "checkpoint_malformed"
    title = "The checkpoint is malformed"
    status = 422


class CheckpointOriginMismatch(DanganError):
    """A verified checkpoint names another log than the one the caller expects."""

    code = "checkpoint_origin_mismatch"
    title = "The checkpoint is from a different log"
    status = 422


@dataclass(frozen=True)
class Checkpoint:
    """The head of a log's Merkle tree at one size: what a log signs and witnesses cosign."""

    origin: str
    """The log's identity, the first line; conventionally a schema-less URL such as the key name."""
    size: int
    """The number of leaves in the tree, 0 to 2**64 - 1."""
    root: bytes
    """The 32-byte RFC 9162 Merkle tree hash over those leaves."""
    extensions: tuple[str, ...] = ()
    """Opaque, non-empty extension lines after the root; NOT RECOMMENDED by the spec."""

    def __post_init__(self) -> None:
        # tlog-checkpoint "Note text" item 1: the origin MUST be non-empty; its URL form
        # is only a SHOULD, and clients MUST NOT assume it, so nothing more is checked.
        if not _is_line(self.origin):
            raise CheckpointFormatError("the origin is a non-empty line without control characters")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise CheckpointFormatError("the tree size is an integer")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise CheckpointFormatError("the tree size is outside 0..2**64-1")
        if not isinstance(self.root, bytes) or len(self.root) != ROOT_SIZE:
            raise CheckpointFormatError(f"the root hash is {ROOT_SIZE} bytes")
        if isinstance(self.extensions, str):
            raise CheckpointFormatError("the extensions are a sequence of lines, not one string")
        extensions = tuple(self.extensions)
        # tlog-checkpoint "Note text" item 4: extension lines MUST be non-empty.
        if not all(_is_line(line) for line in extensions):
            raise CheckpointFormatError("an extension line is empty or holds a control character")
        object.__setattr__(self, "extensions", extensions)

    def body(self) -> str:
        """The note text: origin, size, base64 root and extensions, each line ending in newline."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode("ascii")]
        return "".join(f"{line}\n" for line in (*lines, *self.extensions))

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        """The checkpoint a note text states; raises :class:`CheckpointFormatError` if malformed.

        Enforces tlog-checkpoint "Note text": at least three non-empty lines ending in a
        newline, a decimal size without leading zeroes that fits in 64 bits, and a root
        that is canonical standard base64 (RFC 4648 §4, §3.5) of exactly 32 bytes.
        """
        if not isinstance(body, str) or not body.endswith("\n"):
            raise CheckpointFormatError("a checkpoint body is text ending in a newline")
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointFormatError("a checkpoint body has at least three lines")
        origin, size_text, root_text, *extensions = lines
        if not _TREE_SIZE.fullmatch(size_text):
            raise CheckpointFormatError("the tree size is decimal without leading zeroes")
        return cls(origin, int(size_text), _decode_root(root_text), tuple(extensions))


def sign_checkpoint(signer: NoteSigner, checkpoint: Checkpoint) -> str:
    """The signed note of ``checkpoint``.

    The key name SHOULD match the origin (tlog-checkpoint "Signatures"); not enforced.
    """
    return signer.sign(checkpoint.body())


def open_checkpoint(
    note: str | bytes, verifier: NoteVerifier, *, origin: str | None = None
) -> Checkpoint:
    """The checkpoint in ``note`` once ``verifier``'s signature over it verifies.

    The text is read only after the signature verifies (signed-note: the text MUST be
    ignored until then). With ``origin``, the checkpoint must come from that log. The
    key name need not equal the origin: the spec makes that only a SHOULD.

    Raises :class:`~dangan.ledger.note.NoteVerificationError`,
    :class:`CheckpointFormatError` or :class:`CheckpointOriginMismatch`.
    """
    checkpoint = Checkpoint.parse(verifier.verify(note))
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointOriginMismatch(f"the checkpoint is not from the log {origin!r}")
    return checkpoint


def _is_line(value: object) -> bool:
    """Whether ``value`` is a non-empty string fit for one line of UTF-8 note text."""
    if not isinstance(value, str) or value == "" or _LINE_FORBIDDEN.search(value):
        return False
    try:
        value.encode("utf-8")  # a lone surrogate has no UTF-8 form
    except UnicodeEncodeError:
        return False
    return True


def _decode_root(text: str) -> bytes:
    """The root hash from canonical standard base64 (RFC 4648 §4, §3.5)."""
    try:
        root = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CheckpointFormatError("the root hash is not base64") from exc
    if base64.b64encode(root).decode("ascii") != text:
        raise CheckpointFormatError("the root hash is not canonical base64")
    if len(root) != ROOT_SIZE:
        raise CheckpointFormatError(f"the root hash is {ROOT_SIZE} bytes")
    return root
