"""Tests for C2SP signed notes with Ed25519 keys (``dangan.ledger.note``).

Known answers come from ``vectors/signed_note.json`` (golang.org/x/mod/sumdb/note's test
keys and notes, and the spec's example; sources named in the file). OpenSSL checks our
signatures and we check its signatures, in both directions, on the same key.
"""

from __future__ import annotations

import base64
import doctest
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from dangan.errors import DanganError
from dangan.ledger import note
from dangan.ledger.note import (
    MAX_SIGNATURES,
    NoteKeyError,
    NoteSigner,
    NoteTextError,
    NoteVerificationError,
    NoteVerifier,
    key_id,
)

VECTORS = json.loads((Path(__file__).parent / "vectors" / "signed_note.json").read_text("utf-8"))
TEXT: str = VECTORS["text"]
PETER, ENOCH = VECTORS["keys"]["PeterNeumann"], VECTORS["keys"]["EnochRoot"]
PETER_SIG: str = VECTORS["signatures"]["PeterNeumann"]
ENOCH_SIG: str = VECTORS["signatures"]["EnochRoot"]
PETER_NOTE = TEXT + "\n" + PETER_SIG
EM = "\u2014"

MALFORMED = "malformed note"
NOT_SIGNED = "no valid signature from this key"


def _peter_signer() -> NoteSigner:
    """The Go test signer, rebuilt from the Ed25519 seed inside its signer key."""
    seed = base64.b64decode(PETER["skey"].split("+", 4)[4])[1:]
    return NoteSigner("PeterNeumann", Ed25519PrivateKey.from_private_bytes(seed))


PETER_VERIFIER = NoteVerifier.parse(PETER["vkey"])
ENOCH_VERIFIER = NoteVerifier.parse(ENOCH["vkey"])
SIGNER = NoteSigner.generate("dangan.example/ledger")
OTHER = NoteSigner.generate("other.example/witness")


def _line(name: str, payload: bytes) -> str:
    return f"{EM} {name} {base64.b64encode(payload).decode()}\n"


def _rejects(verifier: NoteVerifier, signed: str | bytes, detail: str) -> None:
    with pytest.raises(NoteVerificationError) as info:
        verifier.verify(signed)
    assert info.value.detail == detail


# --- known answers -----------------------------------------------------------------------


def test_key_ids_match_the_go_vectors() -> None:
    for vector in (PETER, ENOCH):
        verifier = NoteVerifier.parse(vector["vkey"])
        assert verifier.key_id.hex() == vector["key_id"]
        assert key_id(verifier.name, verifier.public_key) == bytes.fromhex(vector["key_id"])
        assert verifier.verifier_key() == vector["vkey"]


def test_key_id_is_the_spec_hash() -> None:
    public = SIGNER.public_key()
    expected = hashlib.sha256(b"dangan.example/ledger\n\x01" + public).digest()[:4]
    assert key_id("dangan.example/ledger", public) == SIGNER.key_id == expected


def test_signer_from_the_go_seed_has_the_go_verifier_key() -> None:
    signer = _peter_signer()
    assert signer.key_id.hex() == PETER["key_id"]
    assert signer.verifier_key() == PETER["vkey"]
    assert signer.verifier() == PETER_VERIFIER


def test_signing_reproduces_the_go_note_byte_for_byte() -> None:
    assert _peter_signer().sign(TEXT) == PETER_NOTE


def test_go_notes_verify_with_each_known_key() -> None:
    both = TEXT + "\n" + PETER_SIG + ENOCH_SIG
    assert PETER_VERIFIER.verify(PETER_NOTE) == TEXT
    assert PETER_VERIFIER.verify(both) == TEXT
    assert ENOCH_VERIFIER.verify(both) == TEXT
    assert PETER_VERIFIER.verify(both.encode("utf-8")) == TEXT
    _rejects(ENOCH_VERIFIER, PETER_NOTE, NOT_SIGNED)


def test_the_spec_example_parses_but_is_not_signed_by_our_keys() -> None:
    example = VECTORS["spec_example"]
    assert example["text"].count("\n\n") == 1  # the text holds an empty line itself
    for verifier in (PETER_VERIFIER, SIGNER.verifier()):
        _rejects(verifier, example["note"], NOT_SIGNED)
    # A key with the example's name but not its key ID is a different key: ignored.
    renamed = NoteSigner.generate(example["name"])
    assert renamed.key_id.hex() != example["key_id"]
    _rejects(renamed.verifier(), example["note"], NOT_SIGNED)
    cosigned = example["note"] + renamed.sign(example["text"]).rsplit("\n\n", 1)[1]
    assert renamed.verifier().verify(cosigned) == example["text"]


@pytest.mark.parametrize("vector", VECTORS["bad_verifier_keys"], ids=lambda v: v["why"])
def test_go_bad_verifier_keys_are_refused(vector: dict[str, str]) -> None:
    with pytest.raises(NoteKeyError):
        NoteVerifier.parse(vector["vkey"])


def test_every_substring_and_single_increment_of_a_verifier_key_is_refused() -> None:
    vkey = PETER["vkey"]
    for i in range(len(vkey)):
        for j in range(i + 1, len(vkey) + 1):
            if (i, j) != (0, len(vkey)):
                with pytest.raises(NoteKeyError):
                    NoteVerifier.parse(vkey[i:j])
    for i in range(len(vkey)):
        with pytest.raises(NoteKeyError):
            NoteVerifier.parse(vkey[:i] + chr(ord(vkey[i]) + 1) + vkey[i + 1 :])


def test_doctests_run() -> None:
    result = doctest.testmod(note)
    assert result.failed == 0 and result.attempted >= 3


# --- OpenSSL cross-checks --------------------------------------------------------------

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command")


def _openssl(*args: str) -> subprocess.CompletedProcess[bytes]:
    assert OPENSSL is not None
    return subprocess.run([OPENSSL, *args], capture_output=True, check=False, timeout=60)


@needs_openssl
def test_openssl_verifies_a_note_signature(tmp_path: Path) -> None:
    text = "dangan.example/ledger\n7\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
    signed = SIGNER.sign(text)
    payload = base64.b64decode(signed.rsplit(" ", 1)[1])
    assert payload[:4] == SIGNER.key_id
    public_pem = SIGNER.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "pub.pem").write_bytes(public_pem)
    (tmp_path / "text").write_bytes(text.encode())
    (tmp_path / "sig").write_bytes(payload[4:])
    verify = ["pkeyutl", "-verify", "-pubin", "-inkey", str(tmp_path / "pub.pem"), "-rawin"]
    good = _openssl(*verify, "-in", str(tmp_path / "text"), "-sigfile", str(tmp_path / "sig"))
    assert good.returncode == 0, good.stderr
    assert b"Signature Verified Successfully" in good.stdout
    (tmp_path / "text").write_bytes(text.replace("7", "8").encode())
    bad = _openssl(*verify, "-in", str(tmp_path / "text"), "-sigfile", str(tmp_path / "sig"))
    assert bad.returncode != 0


@needs_openssl
def test_a_signature_made_by_openssl_from_our_pem_verifies(tmp_path: Path) -> None:
    (tmp_path / "key.pem").write_bytes(SIGNER.private_pem())
    (tmp_path / "text").write_bytes(TEXT.encode())
    signed = _openssl(
        "pkeyutl", "-sign", "-inkey", str(tmp_path / "key.pem"), "-rawin",
        "-in", str(tmp_path / "text"), "-out", str(tmp_path / "sig"),
    )
    assert signed.returncode == 0, signed.stderr
    signature = (tmp_path / "sig").read_bytes()
    assert len(signature) == 64
    made = TEXT + "\n" + _line(SIGNER.name, SIGNER.key_id + signature)
    assert made == SIGNER.sign(TEXT)  # Ed25519 is deterministic (RFC 8032 §5.1.6)
    assert SIGNER.verifier().verify(made) == TEXT


# --- signers and verifier keys -----------------------------------------------------------


def test_pem_roundtrip_keeps_the_key() -> None:
    pem = SIGNER.private_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    again = NoteSigner.from_pem(SIGNER.name, pem)
    assert again.public_key() == SIGNER.public_key()
    assert again.verifier_key() == SIGNER.verifier_key()
    assert again.sign(TEXT) == SIGNER.sign(TEXT)
    assert len(SIGNER.public_key()) == 32
    assert "PRIVATE" not in repr(SIGNER) and SIGNER.name in repr(SIGNER)


def _ec_pem() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _encrypted_pem() -> bytes:
    return SIGNER.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )


BAD_PEMS = {"empty": b"", "junk": b"not a key", "ec": _ec_pem(), "encrypted": _encrypted_pem()}


@pytest.mark.parametrize("pem", BAD_PEMS.values(), ids=BAD_PEMS.keys())
def test_from_pem_refuses_what_is_not_an_unencrypted_ed25519_key(pem: bytes) -> None:
    with pytest.raises(NoteKeyError) as info:
        NoteSigner.from_pem("dangan.example/ledger", pem)
    assert isinstance(info.value, DanganError)


BAD_NAMES = ["", "a b", "a+b", "a\tb", "a\nb", "a\u00a0b", "a\u3000b", "a\u2028b", "a\x00b"]
BAD_NAMES += ["\ud800"]  # a lone surrogate has no UTF-8 form


@pytest.mark.parametrize("name", BAD_NAMES)
def test_key_names_follow_the_spec(name: str) -> None:
    public = SIGNER.public_key()
    with pytest.raises(NoteKeyError):
        NoteSigner.generate(name)
    with pytest.raises(NoteKeyError):
        key_id(name, public)
    with pytest.raises(NoteKeyError):
        NoteVerifier(name, public)
    vkey = SIGNER.verifier_key()
    with pytest.raises(NoteKeyError):
        NoteVerifier.parse(name + vkey[len(SIGNER.name) :])


@pytest.mark.parametrize(
    "vkey",
    [
        "",
        "dangan.example",
        "dangan.example+0000",
        " " + SIGNER.verifier_key(),
        SIGNER.verifier_key() + "\n",
        SIGNER.verifier_key().replace("+", "+0x", 1),
        SIGNER.verifier_key()[:-1] + ("B" if SIGNER.verifier_key()[-1] == "A" else "A"),
    ],
)
def test_malformed_verifier_keys_are_refused(vkey: str) -> None:
    with pytest.raises(NoteKeyError):
        NoteVerifier.parse(vkey)


def test_verifier_key_accepts_an_uppercase_key_id_like_go() -> None:
    name, hex_id, rest = PETER["vkey"].split("+", 2)
    assert NoteVerifier.parse(f"{name}+{hex_id.upper()}+{rest}") == PETER_VERIFIER


def test_public_keys_must_be_32_bytes() -> None:
    with pytest.raises(NoteKeyError):
        key_id("a", b"\x00" * 31)
    with pytest.raises(NoteKeyError):
        NoteVerifier("a", b"\x00" * 33)


# --- signing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["", "no final newline", "a\r\n", "tab\there\n", "nul\x00\n", "esc\x1b\n", "\ud800\n", b"x\n"],
)
def test_texts_that_break_the_format_are_not_signed(text: str) -> None:
    with pytest.raises(NoteTextError):
        SIGNER.sign(text)


@pytest.mark.parametrize(
    "text",
    [
        "one line\n",
        "\n",
        "empty\n\nlines\n\n\ninside\n",
        "ends with a blank line\n\n",
        f"looks signed\n\n{EM} fake AAAAAAAA\n",
        "del \x7f and next-line \u0085 are not ASCII controls\n",
        "日本語 — emoji 🗒\n",
    ],
)
def test_texts_allowed_by_the_spec_roundtrip(text: str) -> None:
    assert SIGNER.verifier().verify(SIGNER.sign(text)) == text


# --- verification: accepted -------------------------------------------------------------------


def test_unknown_keys_are_ignored() -> None:
    signed = SIGNER.sign(TEXT)
    foreign = OTHER.sign(TEXT).rsplit("\n\n", 1)[1]
    junk = _line("unknown.example", b"\x01\x02\x03\x04" + b"\x00" * 64)
    same_name = _line(SIGNER.name, bytes(a ^ 0xFF for a in SIGNER.key_id) + b"\x00" * 64)
    same_id = _line("renamed.example", SIGNER.key_id + b"\x00" * 64)
    for extra in (foreign, junk, same_name, same_id):
        assert SIGNER.verifier().verify(TEXT + "\n" + extra + signed.rsplit("\n\n", 1)[1]) == TEXT
        assert SIGNER.verifier().verify(signed + extra) == TEXT


def test_the_limit_of_signatures_accepts_at_most_MAX_SIGNATURES() -> None:
    ours = SIGNER.sign(TEXT).rsplit("\n\n", 1)[1]
    foreign = _line("unknown.example", b"\x00" * 68)
    full = TEXT + "\n" + foreign * (MAX_SIGNATURES - 1) + ours
    assert MAX_SIGNATURES >= 16  # signed-note "Format": MUST accept at least 16
    assert SIGNER.verifier().verify(full) == TEXT
    _rejects(SIGNER.verifier(), full + foreign, MALFORMED)
    _rejects(PETER_VERIFIER, TEXT + "\n" + PETER_SIG * (MAX_SIGNATURES + 1), MALFORMED)


def test_a_repeated_valid_signature_is_accepted() -> None:
    assert PETER_VERIFIER.verify(PETER_NOTE + PETER_SIG) == TEXT


# --- verification: refused ---------------------------------------------------------------------


def _flip_payload(signed: str, byte: int, bit: int) -> str:
    """``signed`` with one bit of its last signature line's decoded payload inverted."""
    head, encoded = signed.rstrip("\n").rsplit(" ", 1)
    payload = bytearray(base64.b64decode(encoded))
    payload[byte] ^= 1 << bit
    return f"{head} {base64.b64encode(payload).decode()}\n"


def test_a_flipped_bit_in_the_key_id_or_the_signature_is_refused() -> None:
    signed = SIGNER.sign(TEXT)
    for byte in range(4 + 64):
        for bit in range(8):
            _rejects(SIGNER.verifier(), _flip_payload(signed, byte, bit), NOT_SIGNED)


def test_a_changed_character_in_the_text_is_refused() -> None:
    signed = SIGNER.sign(TEXT)
    for i in range(len(TEXT)):
        for bit in range(7):
            changed = signed[:i] + chr(ord(signed[i]) ^ (1 << bit)) + signed[i + 1 :]
            with pytest.raises(NoteVerificationError):
                SIGNER.verifier().verify(changed)


def test_another_key_or_another_name_does_not_verify() -> None:
    signed = SIGNER.sign(TEXT)
    same_name = NoteSigner.generate(SIGNER.name)
    renamed = NoteVerifier("renamed.example", SIGNER.public_key())
    for verifier in (same_name.verifier(), renamed, OTHER.verifier(), PETER_VERIFIER):
        _rejects(verifier, signed, NOT_SIGNED)


def test_a_failing_line_from_the_known_key_rejects_the_whole_note() -> None:
    # signed-note "Signatures": a failing signature from a known key SHOULD reject the note.
    bad = _flip_payload(PETER_NOTE, 10, 0).rsplit("\n\n", 1)[1]
    _rejects(PETER_VERIFIER, PETER_NOTE + bad, NOT_SIGNED)
    _rejects(PETER_VERIFIER, TEXT + "\n" + bad + PETER_SIG, NOT_SIGNED)
    assert ENOCH_VERIFIER.verify(TEXT + "\n" + bad + ENOCH_SIG) == TEXT  # not Enoch's problem


@pytest.mark.parametrize("length", [1, 32, 63, 65, 128])
def test_a_signature_of_the_wrong_length_from_the_known_key_is_refused(length: int) -> None:
    signed = TEXT + "\n" + _line(SIGNER.name, SIGNER.key_id + b"\x00" * length)
    _rejects(SIGNER.verifier(), signed, NOT_SIGNED)


def test_a_signature_over_another_text_is_refused() -> None:
    # A blank line between signatures moves the text boundary (the last empty line wins).
    _rejects(PETER_VERIFIER, TEXT + "\n" + PETER_SIG + "\n" + ENOCH_SIG, NOT_SIGNED)
    _rejects(SIGNER.verifier(), "other\n\n" + SIGNER.sign(TEXT).rsplit("\n\n", 1)[1], NOT_SIGNED)


MALFORMED_NOTES: dict[str, str | bytes | object] = {
    "text only": TEXT,
    "blank line but no signature": TEXT + "\n",
    "no final newline": PETER_NOTE[:-1],
    "no blank line": TEXT + PETER_SIG,
    "leading control character": "\x01" + PETER_NOTE,
    "invalid UTF-8": b"\xff" + PETER_NOTE.encode(),
    "lone surrogate": "\ud800" + PETER_NOTE,
    "CRLF line ends": PETER_NOTE.replace("\n", "\r\n"),
    "tab in signature line": PETER_NOTE.replace(f"{EM} PeterNeumann ", f"{EM} PeterNeumann\t"),
    "space in name": TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Bad Name"),
    "plus in name": TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Peter+Neumann"),
    "empty name": TEXT + "\n" + PETER_SIG.replace(f"{EM} PeterNeumann ", f"{EM}  "),
    "hyphen for em dash": TEXT + "\n" + PETER_SIG.replace(EM, "-"),
    "no space after dash": TEXT + "\n" + PETER_SIG.replace(f"{EM} ", EM),
    "no signature": TEXT + "\n" + f"{EM} PeterNeumann\n",
    "unpadded base64": TEXT + "\n" + PETER_SIG.replace("=\n", "\n"),
    "non-canonical base64": TEXT + "\n" + PETER_SIG.replace("AM=\n", "AN=\n"),
    "URL-safe base64": TEXT + "\n" + PETER_SIG.replace("/", "_"),
    "key ID only": TEXT + "\n" + _line("PeterNeumann", bytes.fromhex(PETER["key_id"])),
    "line after signatures": PETER_NOTE + "Unexpected line.\n",
    "blank line after signatures": PETER_NOTE + "\n",
    "malformed unknown line": PETER_NOTE + f"{EM} unknown.example !!!!\n",
    "empty": "",
    "not text": 42,
}


@pytest.mark.parametrize("signed", MALFORMED_NOTES.values(), ids=MALFORMED_NOTES.keys())
def test_malformed_notes_are_refused_as_malformed(signed: str) -> None:
    _rejects(PETER_VERIFIER, signed, MALFORMED)


def test_rejections_are_opaque() -> None:
    details = set()
    for signed in (*MALFORMED_NOTES.values(), SIGNER.sign(TEXT), _flip_payload(PETER_NOTE, 9, 3)):
        with pytest.raises(NoteVerificationError) as info:
            PETER_VERIFIER.verify(signed)  # type: ignore[arg-type]
        error = info.value
        assert (error.code, error.status) == ("note_verification_failed", 422)
        assert error.title == "The signed note does not verify"
        assert error.extra == {} and str(error) == error.detail
        details.add(error.detail)
    assert details == {MALFORMED, NOT_SIGNED}


# --- properties --------------------------------------------------------------------------------

_TEXT_CHARS = st.characters(
    codec="utf-8", exclude_characters=[chr(c) for c in range(0x20) if c != 0x0A]
)
_NAME_CHARS = st.characters(codec="utf-8", min_codepoint=0x21).filter(
    lambda ch: ch != "+" and not ch.isspace()
)
texts = st.text(_TEXT_CHARS).map(lambda s: s + "\n")


@settings(max_examples=200)
@given(texts)
def test_signed_texts_roundtrip(text: str) -> None:
    assert SIGNER.verifier().verify(SIGNER.sign(text)) == text
    assert SIGNER.verifier().verify(SIGNER.sign(text).encode("utf-8")) == text


@settings(max_examples=200)
@given(texts, st.data())
def test_any_changed_character_is_refused(text: str, data: st.DataObject) -> None:
    signed = SIGNER.sign(text)
    i = data.draw(st.integers(0, len(text) - 1))
    replacement = data.draw(_TEXT_CHARS.filter(lambda ch: ch != text[i]))
    with pytest.raises(NoteVerificationError):
        SIGNER.verifier().verify(signed[:i] + replacement + signed[i + 1 :])


@settings(max_examples=100)
@given(st.text(_NAME_CHARS, min_size=1, max_size=40))
def test_valid_names_roundtrip_through_verifier_keys(name: str) -> None:
    signer = NoteSigner(name, SIGNER.private_key)
    verifier = NoteVerifier.parse(signer.verifier_key())
    assert (verifier.name, verifier.key_id, verifier.public_key) == (
        name,
        key_id(name, SIGNER.public_key()),
        SIGNER.public_key(),
    )
    assert verifier.verify(signer.sign("x\n")) == "x\n"
