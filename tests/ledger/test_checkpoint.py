"""Tests for C2SP tlog-checkpoints (``dangan.ledger.checkpoint``).

Known answers come from ``vectors/tlog_checkpoint.json``: real signed tree heads of the
Go checksum database, which are tlog-checkpoints, verified under the key the go command
pins, and the spec's example body (sources named in the file).
"""

from __future__ import annotations

import base64
import doctest
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dangan.ledger import checkpoint as checkpoint_module
from dangan.ledger.checkpoint import (
    MAX_TREE_SIZE,
    Checkpoint,
    CheckpointFormatError,
    CheckpointOriginMismatch,
    open_checkpoint,
    sign_checkpoint,
)
from dangan.ledger.merkle import EMPTY_ROOT, leaf_hash, root
from dangan.ledger.note import NoteSigner, NoteVerificationError, NoteVerifier

VECTORS = json.loads(
    (Path(__file__).parent / "vectors" / "tlog_checkpoint.json").read_text("utf-8")
)
SUMDB = NoteVerifier.parse(VECTORS["verifier_key"])
EM = "\u2014"

ORIGIN = "dangan.example/ledger"
SIGNER = NoteSigner.generate(ORIGIN)
ROOT = root([leaf_hash(bytes([i])) for i in range(5)])
ROOT_B64 = base64.b64encode(ROOT).decode()


# --- known answers -----------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS["signed"], ids=lambda v: str(v["size"]))
def test_go_checksum_database_heads_open_as_checkpoints(vector: dict[str, object]) -> None:
    opened = open_checkpoint(vector["note"], SUMDB, origin=VECTORS["origin"])
    assert opened == Checkpoint(VECTORS["origin"], vector["size"], base64.b64decode(vector["root"]))
    assert str(vector["note"]).startswith(opened.body() + "\n" + EM + " sum.golang.org ")
    # The key name (sum.golang.org) differs from the origin: allowed, only a SHOULD.
    assert SUMDB.name != opened.origin
    assert open_checkpoint(vector["note"], SUMDB) == opened


def test_go_checksum_database_heads_refuse_any_change() -> None:
    note = VECTORS["signed"][0]["note"]
    size = str(VECTORS["signed"][0]["size"])
    for changed in (
        note.replace(f"\n{size}\n", f"\n{int(size) + 1}\n"),
        note.replace("go.sum database tree", "go.sum database tre3"),
        note.replace("7uvx", "7uvy"),
    ):
        with pytest.raises(NoteVerificationError):
            open_checkpoint(changed, SUMDB)


def test_the_spec_example_body_parses_and_reserialises() -> None:
    example = VECTORS["spec_example"]
    body = example["note"].rsplit("\n\n", 1)[0] + "\n"
    parsed = Checkpoint.parse(body)
    assert (parsed.origin, parsed.size, parsed.root) == (
        example["origin"],
        example["size"],
        base64.b64decode(example["root"]),
    )
    assert parsed.extensions == () and parsed.body() == body
    with pytest.raises(NoteVerificationError):  # its key is not published; ours is not it
        open_checkpoint(example["note"], NoteSigner.generate(example["origin"]).verifier())


def test_doctests_run() -> None:
    result = doctest.testmod(checkpoint_module)
    assert result.failed == 0 and result.attempted >= 3


# --- the body --------------------------------------------------------------------------------


def test_body_is_the_three_lines_and_the_extensions() -> None:
    assert Checkpoint(ORIGIN, 5, ROOT).body() == f"{ORIGIN}\n5\n{ROOT_B64}\n"
    assert Checkpoint(ORIGIN, 0, EMPTY_ROOT).body() == (
        f"{ORIGIN}\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
    )
    with_ext = Checkpoint(ORIGIN, 5, ROOT, ("ext one", "ext two"))
    assert with_ext.body() == f"{ORIGIN}\n5\n{ROOT_B64}\next one\next two\n"
    assert Checkpoint.parse(with_ext.body()) == with_ext


def test_extensions_given_as_a_list_become_a_tuple() -> None:
    made = Checkpoint(ORIGIN, 1, ROOT, ["a"])  # type: ignore[arg-type]
    assert made.extensions == ("a",)
    assert hash(made) == hash(Checkpoint(ORIGIN, 1, ROOT, ("a",)))


@pytest.mark.parametrize("size", [0, 1, 10, 2**63, MAX_TREE_SIZE])
def test_sizes_up_to_uint64_roundtrip(size: int) -> None:
    body = Checkpoint(ORIGIN, size, ROOT).body()
    assert body.split("\n")[1] == str(size)
    assert Checkpoint.parse(body).size == size


def _body(size: str = "5", root: str = ROOT_B64, origin: str = ORIGIN, tail: str = "") -> str:
    return f"{origin}\n{size}\n{root}\n{tail}"


MALFORMED_BODIES = {
    "leading zero": _body(size="05"),
    "double zero": _body(size="00"),
    "plus sign": _body(size="+5"),
    "minus sign": _body(size="-5"),
    "space before size": _body(size=" 5"),
    "space after size": _body(size="5 "),
    "underscore": _body(size="1_000"),
    "hex size": _body(size="0x5"),
    "empty size": _body(size=""),
    "non-ASCII digit": _body(size="\u0665"),
    "fullwidth digit": _body(size="\uff15"),
    "2**64": _body(size=str(2**64)),
    "huge": _body(size="9" * 5000),
    "root of 31 bytes": _body(root=base64.b64encode(ROOT[:31]).decode()),
    "root of 33 bytes": _body(root=base64.b64encode(ROOT + b"\x00").decode()),
    "empty root": _body(root=""),
    "root without padding": _body(root=ROOT_B64.rstrip("=")),
    "non-canonical root": _body(root=base64.b64encode(b"\x00" * 32).decode()[:-2] + "B="),
    "URL-safe root": _body(root=base64.urlsafe_b64encode(b"\xff" * 32).decode()),
    "hex root": _body(root=ROOT.hex()),
    "empty origin": _body(origin=""),
    "control in origin": _body(origin="log\x00"),
    "CR in origin": _body(origin="log\r"),
    "no final newline": _body()[:-1],
    "two lines": f"{ORIGIN}\n5\n",
    "empty": "",
    "newline only": "\n",
    "blank line after the root": _body(tail="\n"),
    "empty extension between two": _body(tail="a\n\nb\n"),
    "control in extension": _body(tail="a\tb\n"),
    "note with signatures": SIGNER.sign(_body()),
    "bytes": _body().encode(),
}


@pytest.mark.parametrize("body", MALFORMED_BODIES.values(), ids=MALFORMED_BODIES.keys())
def test_malformed_bodies_are_refused(body: str) -> None:
    with pytest.raises(CheckpointFormatError) as info:
        Checkpoint.parse(body)
    assert (info.value.code, info.value.status) == ("checkpoint_malformed", 422)


def test_the_non_canonical_root_vector_really_decodes_to_the_same_bytes() -> None:
    lenient = base64.b64decode(base64.b64encode(b"\x00" * 32).decode()[:-2] + "B=")
    assert lenient == b"\x00" * 32  # so a lenient parser would accept a second encoding


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((ORIGIN, -1, ROOT), {}),
        ((ORIGIN, MAX_TREE_SIZE + 1, ROOT), {}),
        ((ORIGIN, True, ROOT), {}),
        ((ORIGIN, 5.0, ROOT), {}),
        ((ORIGIN, "5", ROOT), {}),
        ((ORIGIN, 5, ROOT[:31]), {}),
        ((ORIGIN, 5, ROOT.hex()), {}),
        ((ORIGIN, 5, bytearray(ROOT)), {}),
        (("", 5, ROOT), {}),
        (("two\nlines", 5, ROOT), {}),
        (("\ud800", 5, ROOT), {}),
        ((None, 5, ROOT), {}),
        ((ORIGIN, 5, ROOT), {"extensions": ("",)}),
        ((ORIGIN, 5, ROOT), {"extensions": ("a\nb",)}),
        ((ORIGIN, 5, ROOT), {"extensions": "abc"}),
        ((ORIGIN, 5, ROOT), {"extensions": (1,)}),
    ],
)
def test_checkpoints_that_cannot_be_written_are_refused(args: tuple, kwargs: dict) -> None:
    with pytest.raises(CheckpointFormatError):
        Checkpoint(*args, **kwargs)


# --- signing and opening -------------------------------------------------------------------


def test_sign_and_open_roundtrip() -> None:
    made = Checkpoint(ORIGIN, 5, ROOT)
    note = sign_checkpoint(SIGNER, made)
    assert note.startswith(made.body() + "\n" + EM + f" {ORIGIN} ")
    assert open_checkpoint(note, SIGNER.verifier()) == made
    assert open_checkpoint(note, SIGNER.verifier(), origin=ORIGIN) == made
    assert open_checkpoint(note.encode(), NoteVerifier.parse(SIGNER.verifier_key())) == made


def test_open_refuses_another_origin() -> None:
    note = sign_checkpoint(SIGNER, Checkpoint(ORIGIN, 5, ROOT))
    with pytest.raises(CheckpointOriginMismatch) as info:
        open_checkpoint(note, SIGNER.verifier(), origin="other.example/log")
    assert (info.value.code, info.value.status) == ("checkpoint_origin_mismatch", 422)


def test_a_key_name_other_than_the_origin_is_allowed() -> None:
    witness = NoteSigner.generate("witness.example")
    made = Checkpoint(ORIGIN, 5, ROOT)
    note = sign_checkpoint(witness, made)
    assert open_checkpoint(note, witness.verifier(), origin=ORIGIN) == made


def test_open_refuses_another_key_before_reading_the_body() -> None:
    note = SIGNER.sign("not a checkpoint\n")
    with pytest.raises(NoteVerificationError):
        open_checkpoint(note, NoteSigner.generate(ORIGIN).verifier())
    with pytest.raises(CheckpointFormatError):
        open_checkpoint(note, SIGNER.verifier())


def test_open_accepts_cosignatures_from_unknown_keys() -> None:
    made = Checkpoint(ORIGIN, 5, ROOT)
    note = sign_checkpoint(SIGNER, made)
    cosignature = sign_checkpoint(NoteSigner.generate("witness.example"), made).split("\n\n")[1]
    assert open_checkpoint(note + cosignature, SIGNER.verifier(), origin=ORIGIN) == made


# --- properties ----------------------------------------------------------------------------

_LINE = st.text(
    st.characters(codec="utf-8", exclude_characters=[chr(c) for c in range(0x20)]), min_size=1
)
checkpoints = st.builds(
    Checkpoint,
    origin=_LINE,
    size=st.integers(0, MAX_TREE_SIZE),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(_LINE, max_size=3).map(tuple),
)


@settings(max_examples=200)
@given(checkpoints)
def test_bodies_roundtrip(made: Checkpoint) -> None:
    assert Checkpoint.parse(made.body()) == made


@settings(max_examples=100)
@given(checkpoints)
def test_signed_checkpoints_roundtrip(made: Checkpoint) -> None:
    assert open_checkpoint(sign_checkpoint(SIGNER, made), SIGNER.verifier()) == made


@settings(max_examples=200)
@given(st.text(st.sampled_from("0123456789+- _x"), max_size=22))
def test_size_lines_parse_exactly_when_canonical(size: str) -> None:
    canonical = size.isdigit() and str(int(size)) == size and int(size) <= MAX_TREE_SIZE
    if canonical:
        assert Checkpoint.parse(_body(size=size)).size == int(size)
    else:
        with pytest.raises(CheckpointFormatError):
            Checkpoint.parse(_body(size=size))
