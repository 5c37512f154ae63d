"""Licence identifiers, ISO/IEC 7064 MOD 37,36 and GB 32100-2015 USCCs.

Known answers come from ``vectors/identifiers.json``; the check characters are
cross-checked against python-stdnum, an independent implementation.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.cn import uscc as stdnum_uscc
from stdnum.iso7064 import mod_37_36

from dangan.errors import InvalidRequest
from dangan.licences.identifiers import (
    InvalidIdentifier,
    LicenceIdentifier,
    mod37_36_check,
    mod37_36_valid,
    new_serial,
    uscc_check_char,
    validate_uscc,
)

VECTORS = json.loads((Path(__file__).parent / "vectors" / "identifiers.json").read_text("utf-8"))
ALPHANUMERIC = string.digits + string.ascii_uppercase
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
alphanumerics = st.text(alphabet=ALPHANUMERIC, min_size=1, max_size=60)
components = st.text(alphabet=ALPHANUMERIC, min_size=1, max_size=20)


@st.composite
def usccs(draw: st.DrawFn) -> str:
    """Valid USCCs: digits where stdnum wants them (1–8), then 9 characters of the alphabet."""
    first8 = draw(st.text(alphabet=string.digits, min_size=8, max_size=8))
    rest = draw(st.text(alphabet=USCC_ALPHABET, min_size=9, max_size=9))
    return first8 + rest + stdnum_uscc.calc_check_digit(first8 + rest)


# ISO/IEC 7064 MOD 37,36 -------------------------------------------------------------------


def test_mod37_36_known_answer_from_stdnum_docs() -> None:
    assert mod37_36_check("A12425GABC1234002") == "M"
    assert mod37_36_valid("A12425GABC1234002M")
    assert not mod37_36_valid("A12425GABC1234002N")


@given(alphanumerics)
def test_mod37_36_check_agrees_with_stdnum(chars: str) -> None:
    expected = mod_37_36.calc_check_digit(chars)
    assert mod37_36_check(chars) == expected
    assert mod37_36_valid(chars + expected)
    assert mod_37_36.is_valid(chars + expected)


@given(st.text(alphabet=ALPHANUMERIC, min_size=2, max_size=40))
def test_mod37_36_valid_agrees_with_stdnum(chars: str) -> None:
    assert mod37_36_valid(chars) == mod_37_36.is_valid(chars)


@given(alphanumerics, st.data())
def test_mod37_36_catches_every_single_substitution(chars: str, data: st.DataObject) -> None:
    protected = chars + mod37_36_check(chars)
    position = data.draw(st.integers(0, len(protected) - 1))
    other = data.draw(st.sampled_from(ALPHANUMERIC.replace(protected[position], "")))
    assert not mod37_36_valid(protected[:position] + other + protected[position + 1 :])


@pytest.mark.parametrize("chars", ["abc", "A.B", "A B", "Ä"])
def test_mod37_36_refuses_characters_outside_the_alphabet(chars: str) -> None:
    with pytest.raises(ValueError, match="not in the ISO 7064 MOD 37,36 alphabet"):
        mod37_36_check(chars)
    assert not mod37_36_valid(chars + "0")


def test_mod37_36_valid_needs_a_check_and_something_to_check() -> None:
    assert not mod37_36_valid("")
    assert not mod37_36_valid("1")


# GB 32100-2015 USCC -----------------------------------------------------------------------


def test_uscc_known_answer() -> None:
    assert uscc_check_char("91110000600037341") == "L"
    assert validate_uscc(" 91110000600037341l ") == "91110000600037341L"


@given(st.text(alphabet=USCC_ALPHABET, min_size=17, max_size=17))
def test_uscc_check_char_agrees_with_stdnum(first17: str) -> None:
    assert uscc_check_char(first17) == stdnum_uscc.calc_check_digit(first17)


@given(usccs())
def test_valid_usccs_agree_with_stdnum(code: str) -> None:
    assert stdnum_uscc.is_valid(code)
    assert validate_uscc(code.lower()) == code


@given(usccs(), st.data())
def test_a_changed_uscc_check_character_is_refused(code: str, data: st.DataObject) -> None:
    wrong = data.draw(st.sampled_from(USCC_ALPHABET.replace(code[-1], "")))
    with pytest.raises(InvalidIdentifier) as caught:
        validate_uscc(code[:-1] + wrong)
    assert caught.value.detail.endswith(f"wrong check character {wrong!r}; expected {code[-1]!r}")
    assert not stdnum_uscc.is_valid(code[:-1] + wrong)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("91110000600037341", "18 characters, not 17"),
        ("91110000600037341LL", "18 characters, not 19"),
        ("9111000060003734OL", "contains 'O'"),
        ("91110000600037341-", "contains '-'"),
        ("91I1S000600037341L", "contains 'I', 'S'"),
        ("91A10000600037341L", "positions 3 to 8"),
        ("91110000600037341K", "expected 'L'"),
    ],
)
def test_invalid_usccs_say_what_is_wrong(code: str, message: str) -> None:
    with pytest.raises(InvalidIdentifier, match=message):
        validate_uscc(code)


def test_invalid_identifier_is_a_422_invalid_request() -> None:
    error = InvalidIdentifier("x")
    assert isinstance(error, InvalidRequest)
    assert (error.code, error.status, error.title) == (
        "invalid_licence_identifier",
        422,
        "The licence identifier is invalid",
    )


# Licence identifiers ----------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS["valid"], ids=lambda v: v["text"])
def test_valid_vectors(vector: dict) -> None:
    parsed = LicenceIdentifier.parse(vector["text"])
    assert (parsed.type_code, parsed.issuer_uscc, parsed.serial, parsed.version, parsed.check) == (
        vector["type_code"],
        vector["issuer_uscc"],
        vector["serial"],
        vector["version"],
        vector["check"],
    )
    assert str(parsed) == vector["text"]
    assert LicenceIdentifier.parse(vector["text"].lower()) == parsed
    generated = LicenceIdentifier.generate(
        type_code=vector["type_code"],
        issuer_uscc=vector["issuer_uscc"],
        serial=vector["serial"],
        version=vector["version"],
    )
    assert generated == parsed
    # The check covers the alphanumerics before it, dots skipped, prefix included.
    covered = vector["text"][:-2].replace(".", "")
    assert mod_37_36.calc_check_digit(covered) == vector["check"]


@pytest.mark.parametrize("vector", VECTORS["invalid"], ids=lambda v: repr(v["text"]))
def test_invalid_vectors(vector: dict) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        LicenceIdentifier.parse(vector["text"])
    assert vector["reason"] in caught.value.detail


def test_the_vectors_cover_enough() -> None:
    assert len(VECTORS["valid"]) >= 5 and len(VECTORS["invalid"]) >= 20


@given(components, usccs(), components, st.integers(1, 99))
def test_generate_then_parse_round_trips(type_code: str, uscc: str, serial: str, version: int):
    identifier = LicenceIdentifier.generate(
        type_code=type_code, issuer_uscc=uscc, serial=serial, version=version
    )
    text = str(identifier)
    assert text == f"1.2.156.3005.2.{type_code}.{uscc}.{serial}.{version}.{identifier.check}"
    assert mod_37_36.is_valid(text.replace(".", ""))
    assert LicenceIdentifier.parse(text) == identifier


def test_with_version_recomputes_the_check() -> None:
    first = LicenceIdentifier.parse("1.2.156.3005.2.0101.91110000600037341L.1.1.T")
    second = first.with_version(2)
    assert str(second) == "1.2.156.3005.2.0101.91110000600037341L.1.2.R"
    assert mod_37_36.calc_check_digit("1215630052010191110000600037341L12") == "R"
    assert second.with_version(1) == first
    with pytest.raises(InvalidIdentifier, match="1 to 99, not 100"):
        first.with_version(100)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"type_code": "01-1"}, "type code '01-1'"),
        ({"type_code": "ab"}, "type code 'ab'"),
        ({"serial": "1" * 21}, "serial"),
        ({"version": 0}, "1 to 99, not 0"),
        ({"version": True}, "whole number"),
        ({"issuer_uscc": "91110000600037341M"}, "expected 'L'"),
    ],
)
def test_generate_refuses_bad_components(options: dict, message: str) -> None:
    arguments = {"type_code": "0101", "issuer_uscc": "91110000600037341L", "serial": "1"}
    with pytest.raises(InvalidIdentifier, match=message):
        LicenceIdentifier.generate(**{**arguments, **options})


def test_direct_construction_checks_the_check_character() -> None:
    with pytest.raises(InvalidIdentifier, match="is 'U'; expected 'T'"):
        LicenceIdentifier("0101", "91110000600037341L", "1", 1, "U")
    with pytest.raises(InvalidIdentifier, match="upper case"):
        LicenceIdentifier("0101", "91110000600037341l", "1", 1, "T")


def test_new_serials_are_twelve_random_digits() -> None:
    serials = [new_serial() for _ in range(200)]
    assert all(len(s) == 12 and s.isdigit() and s.isascii() for s in serials)
    assert len(set(serials)) == 200
    as_numbers = sorted(int(s) for s in serials)
    assert any(b - a > 1 for a, b in zip(as_numbers, as_numbers[1:]))  # not a counter
