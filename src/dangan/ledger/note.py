"""Signed notes with Ed25519 keys, as specified by C2SP signed-note (https://c2sp.org/signed-note).

A signed note is a text ending in a newline, a blank line, and one or more signature
lines ``— <key name> base64(key ID ‖ signature)``. Only signature type 0x01 (Ed25519,
RFC 8032) is implemented; lines from any other key are parsed and ignored, as the
spec's "Signatures" section demands. Verifier keys use the ``<name>+<hex key ID>+<base64
(0x01 ‖ public key)>`` form of golang.org/x/mod/sumdb/note, which c2sp.org tools share.

Verification is opaque: :class:`NoteVerificationError` says only "malformed note" or
"no valid signature from this key", never which byte or which check failed.

    DanganError
    ├── NoteKeyError            422 note_key_invalid
    ├── NoteTextError           422 note_text_invalid
    └── NoteVerificationError   422 note_verification_failed

>>> signer = NoteSigner.generate("example.com/log")
>>> verifier = NoteVerifier.parse(signer.verifier_key())
>>> verifier.verify(signer.sign("hello\\nworld\\n"))
'hello\\nworld\\n'
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from dangan.errors import DanganError

#: Signature type identifier byte of Ed25519 (signed-note "Signature types").
ALG_ED25519 = 0x01
#: Length of a key ID: a big-endian uint32 (signed-note "Format").
KEY_ID_SIZE = 4
#: Length of a raw Ed25519 public key (RFC 8032 §5.1.5).
PUBLIC_KEY_SIZE = 32
#: Length of an Ed25519 signature (RFC 8032 §5.1.6).
SIGNATURE_SIZE = 64
#: Most signature lines a note may carry. signed-note "Format": verifiers SHOULD apply a
#: limit and MUST accept at least 16; 100 is the limit of golang.org/x/mod/sumdb/note.
MAX_SIGNATURES = 100

# Every signature line starts with an em dash and a space (signed-note "Format").
_SIGNATURE_PREFIX = "\u2014 "
# signed-note "Format": no ASCII control character other than newline, anywhere.
_FORBIDDEN_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
_HEX_KEY_ID = re.compile(r"[0-9a-fA-F]{8}")

_MALFORMED = "malformed note"
_NOT_SIGNED = "no valid signature from this key"


class NoteKeyError(DanganError):
    """A key name, verifier key or private key is unusable for signed notes."""

    code = "note_key_invalid"
    title = "The signed-note key is invalid"
    status = 422


class NoteTextError(DanganError):
    """A text cannot be signed: it breaks the signed-note rules for note text."""

    code = "note_text_invalid"
    title = "The text cannot be signed as a note"
    status = 422


class NoteVerificationError(DanganError):
    """A note is malformed or carries no valid signature from the expected key."""

    code = "note_verification_failed"
    title = "The signed note does not verify"
    status = 422


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte key ID of an Ed25519 key (signed-note "Ed25519 signatures").

    SHA-256(name ‖ 0x0A ‖ 0x01 ‖ 32-byte public key)[:4]; raises :class:`NoteKeyError`
    on a bad name or a key that is not 32 bytes.
    """
    _check_key_name(name)
    if not isinstance(public_key, bytes) or len(public_key) != PUBLIC_KEY_SIZE:
        raise NoteKeyError(f"an Ed25519 public key is {PUBLIC_KEY_SIZE} bytes")
    return _key_id(name, public_key)


@dataclass(frozen=True, eq=False)
class NoteSigner:
    """An Ed25519 key that signs notes under a key name. Compares by identity."""

    name: str
    """The key name written in every signature line; conventionally a schema-less URL."""
    private_key: Ed25519PrivateKey = field(repr=False)
    """The Ed25519 private key."""
    key_id: bytes = field(init=False)
    """The 4-byte key ID derived from the name and the public key."""

    def __post_init__(self) -> None:
        _check_key_name(self.name)
        if not isinstance(self.private_key, Ed25519PrivateKey):
            raise NoteKeyError("a note signer needs an Ed25519 private key")
        object.__setattr__(self, "key_id", _key_id(self.name, self.public_key()))

    @classmethod
    def generate(cls, name: str) -> NoteSigner:
        """A signer with a fresh random key."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, name: str, pem: bytes) -> NoteSigner:
        """A signer from an unencrypted PKCS#8 PEM Ed25519 private key."""
        try:
            private_key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise NoteKeyError("the PEM data is not an unencrypted private key") from exc
        if not isinstance(private_key, Ed25519PrivateKey):
            raise NoteKeyError("the PEM private key is not an Ed25519 key")
        return cls(name, private_key)

    def private_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM; store it as a secret."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def public_key(self) -> bytes:
        """The raw 32-byte Ed25519 public key (RFC 8032 §5.1.5)."""
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def verifier_key(self) -> str:
        """The verifier key ``<name>+<hex key ID>+<base64(0x01 ‖ public key)>`` to publish."""
        return _verifier_key(self.name, self.key_id, self.public_key())

    def verifier(self) -> NoteVerifier:
        """The verifier for this signer's key."""
        return NoteVerifier(self.name, self.public_key())

    def sign(self, text: str) -> str:
        """The signed note: ``text``, a blank line and one signature line from this key.

        ``text`` must be non-empty, end in a newline and hold no control character other
        than newline (signed-note "Format"); it may contain empty lines. Raises
        :class:`NoteTextError` otherwise.
        """
        message = _note_text_bytes(text)
        if message is None:
            raise NoteTextError(
                "a note text is non-empty UTF-8 ending in a newline, without control "
                "characters other than newline"
            )
        signature = self.key_id + self.private_key.sign(message)
        return f"{text}\n{_SIGNATURE_PREFIX}{self.name} {_b64encode(signature)}\n"


@dataclass(frozen=True)
class NoteVerifier:
    """One trusted Ed25519 key, identified by its key name and key ID, that checks notes."""

    name: str
    """The key name expected in signature lines."""
    public_key: bytes
    """The raw 32-byte Ed25519 public key."""
    key_id: bytes = field(init=False)
    """The 4-byte key ID derived from the name and the public key."""
    _key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key_id", key_id(self.name, self.public_key))
        try:
            loaded = Ed25519PublicKey.from_public_bytes(self.public_key)
        except ValueError as exc:
            raise NoteKeyError("the bytes are not an Ed25519 public key") from exc
        object.__setattr__(self, "_key", loaded)

    @classmethod
    def parse(cls, vkey: str) -> NoteVerifier:
        """A verifier from a verifier key ``<name>+<8 hex digits>+<base64(0x01 ‖ key)>``.

        Raises :class:`NoteKeyError` on a bad name (signed-note "Format"), a key ID that
        is not 8 hex digits or does not match the key, a type other than 0x01 or a key
        that is not 32 bytes. Surrounding whitespace is an error, not trimmed.
        """
        if not isinstance(vkey, str):
            raise NoteKeyError("a verifier key is a string")
        parts = vkey.split("+", 2)  # names hold no "+"; base64 may
        if len(parts) != 3:
            raise NoteKeyError("a verifier key is <name>+<key ID>+<key>")
        name, hex_id, encoded = parts
        _check_key_name(name)
        if not _HEX_KEY_ID.fullmatch(hex_id):
            raise NoteKeyError("the key ID of a verifier key is 8 hex digits")
        key = _b64decode(encoded)
        if not key:
            raise NoteKeyError("the key of a verifier key is not canonical base64")
        if key[0] != ALG_ED25519:
            raise NoteKeyError("only Ed25519 verifier keys (type 0x01) are supported")
        if len(key) != 1 + PUBLIC_KEY_SIZE:
            raise NoteKeyError(f"an Ed25519 public key is {PUBLIC_KEY_SIZE} bytes")
        verifier = cls(name, key[1:])
        if verifier.key_id != bytes.fromhex(hex_id):
            raise NoteKeyError("the key ID of the verifier key does not match its key")
        return verifier

    def verifier_key(self) -> str:
        """This key in verifier-key form, with the key ID in lowercase hex."""
        return _verifier_key(self.name, self.key_id, self.public_key)

    def verify(self, note: str | bytes) -> str:
        """The text of ``note`` once a signature from this key verifies over it.

        Signature lines from other keys are ignored, even those sharing the name or the
        key ID but not both (signed-note "Signatures"). Every line from this key must
        verify: a failing one rejects the whole note, as the spec recommends. Raises
        :class:`NoteVerificationError` if the note is malformed or not signed by this key.
        """
        text, lines = _parse_note(note)
        message = text.encode("utf-8")
        ours = [sig for name, kid, sig in lines if name == self.name and kid == self.key_id]
        if not ours or not all(self._signed(message, sig) for sig in ours):
            raise NoteVerificationError(_NOT_SIGNED)
        return text

    def _signed(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``message``."""
        if len(signature) != SIGNATURE_SIZE:
            return False
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


# --- parsing --------------------------------------------------------------------------


def _parse_note(note: str | bytes) -> tuple[str, list[tuple[str, bytes, bytes]]]:
    """The text and the (name, key ID, signature) of each line; raises on malformed notes."""
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")  # signed-note "Format": valid UTF-8
        except UnicodeDecodeError as exc:
            raise NoteVerificationError(_MALFORMED) from exc
    if not isinstance(note, str) or not _is_utf8(note) or _FORBIDDEN_CONTROL.search(note):
        raise NoteVerificationError(_MALFORMED)
    # signed-note "Format": the text ends at the last empty line, which is not part of it.
    split = note.rfind("\n\n")
    text, block = note[: split + 1], note[split + 2 :]
    if split < 0 or not block.endswith("\n"):
        raise NoteVerificationError(_MALFORMED)
    raw_lines = block[:-1].split("\n")
    if len(raw_lines) > MAX_SIGNATURES:
        raise NoteVerificationError(_MALFORMED)
    lines = [_parse_signature_line(line) for line in raw_lines]
    return text, lines


def _parse_signature_line(line: str) -> tuple[str, bytes, bytes]:
    """``— <name> base64(key ID ‖ signature)`` split into its parts (signed-note "Signatures")."""
    if not line.startswith(_SIGNATURE_PREFIX):
        raise NoteVerificationError(_MALFORMED)
    name, _, encoded = line[len(_SIGNATURE_PREFIX) :].partition(" ")
    decoded = _b64decode(encoded)
    # "4+n bytes": a key ID and a non-empty signature (signed-note "Format").
    if not _is_key_name(name) or decoded is None or len(decoded) <= KEY_ID_SIZE:
        raise NoteVerificationError(_MALFORMED)
    return name, decoded[:KEY_ID_SIZE], decoded[KEY_ID_SIZE:]


# --- helpers --------------------------------------------------------------------------


def _key_id(name: str, public_key: bytes) -> bytes:
    """SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4] without argument checks."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key)
    return digest.digest()[:KEY_ID_SIZE]


def _verifier_key(name: str, kid: bytes, public_key: bytes) -> str:
    return f"{name}+{kid.hex()}+{_b64encode(bytes([ALG_ED25519]) + public_key)}"


def _is_key_name(name: object) -> bool:
    """signed-note "Format": non-empty, no Unicode space, no "+"; also no control or surrogate.

    Control characters below U+0020 cannot appear in a note at all, and lone surrogates
    have no UTF-8 encoding, so a name holding either could never be written.
    """
    return (
        isinstance(name, str)
        and name != ""
        and "+" not in name
        and not any(ch.isspace() for ch in name)
        and _FORBIDDEN_CONTROL.search(name) is None
        and _is_utf8(name)
    )


def _check_key_name(name: object) -> None:
    if not _is_key_name(name):
        raise NoteKeyError(
            "a key name is non-empty and holds no whitespace, '+' or control characters"
        )


def _note_text_bytes(text: object) -> bytes | None:
    """The UTF-8 bytes of a signable note text, or ``None`` if it breaks signed-note "Format"."""
    if not isinstance(text, str) or not text.endswith("\n"):
        return None
    if _FORBIDDEN_CONTROL.search(text) or not _is_utf8(text):
        return None
    return text.encode("utf-8")


def _is_utf8(text: str) -> bool:
    """Whether ``text`` has a UTF-8 encoding (it holds no lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str) -> bytes | None:
    """Standard padded base64 (RFC 4648 §4) in its canonical form (§3.5), else ``None``.

    Refusing non-zero padding bits keeps one encoding per value, so a valid note cannot
    be re-encoded into a different, equally valid one.
    """
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return decoded if _b64encode(decoded) == text else None
