"""The fast canonical-JSON path gives exactly ``rfc8785.dumps``' bytes, or its error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from dangan.ledger import _canonical
from dangan.ledger._canonical import canonical_json
from dangan.ledger.log import encode_event, format_time

# Characters where JSON encoders differ: controls (escaped as \b \f \n \r \t or \u00xx),
# quote and backslash, DEL, Latin-1, the JavaScript line separators, BMP characters above
# the surrogates (which sort after astral ones in UTF-16), astral characters, and lone
# surrogates (not encodable as UTF-8).
TRICKY = "".join(map(chr, range(0x20))) + (
    '"\\/\x7f\x80\xa0\xe9\xff\u2028\u2029\ue000\uffff\ud800\udfff'
)
CHARS = st.one_of(
    st.sampled_from(TRICKY),
    st.characters(min_codepoint=0x20, max_codepoint=0x7E),
    st.characters(exclude_categories=()),  # anything, surrogates included
)
TEXT = st.text(CHARS, max_size=12)
ASCII_KEYS = st.text(st.characters(min_codepoint=0, max_codepoint=0x7F), max_size=8)
SAFE = 2**53 - 1

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-SAFE, SAFE),
    st.integers(),  # also outside the safe range: rfc8785 refuses those
    st.floats(),  # never fast: always rfc8785's own number formatting (or its refusal)
    TEXT,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.one_of(ASCII_KEYS, TEXT), inner, max_size=4),
        st.dictionaries(st.integers(0, 3), inner, min_size=1, max_size=2),  # non-str keys
    ),
    max_leaves=12,
)


def outcome(encode: Any, value: Any) -> bytes | type[BaseException]:
    """What ``encode(value)`` gives: its bytes, or the type of the error it raises."""
    try:
        return encode(value)
    except Exception as exc:  # noqa: BLE001 - the error type is the outcome
        return type(exc)


@settings(max_examples=1500, deadline=None)
@given(VALUES)
def test_any_value_encodes_as_rfc8785_does(value: Any) -> None:
    assert outcome(canonical_json, value) == outcome(rfc8785.dumps, value)


SUBJECTS = st.dictionaries(
    ASCII_KEYS,
    st.one_of(
        st.none(), st.booleans(), st.integers(-SAFE, SAFE), TEXT,
        st.lists(st.one_of(st.integers(-SAFE, SAFE), TEXT), max_size=3),
        st.dictionaries(ASCII_KEYS, st.one_of(st.integers(-SAFE, SAFE), TEXT), max_size=3),
    ),
    max_size=6,
)


@settings(max_examples=1500, deadline=None)
@given(
    seq=st.integers(0, SAFE),
    prev=st.binary(min_size=32, max_size=32),
    kind=TEXT,
    actor=TEXT,
    subject=SUBJECTS,
    millis=st.integers(0, 10**12),
)
def test_events_encode_as_rfc8785_does(
    seq: int, prev: bytes, kind: str, actor: str, subject: dict[str, Any], millis: int
) -> None:
    at = datetime(1990, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis)
    event = {
        "v": 1, "seq": seq, "prev": prev.hex(), "type": kind,
        "time": at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z",
        "actor": actor, "subject": subject,
    }
    expected = outcome(rfc8785.dumps, event)
    encoded = outcome(
        lambda _: encode_event(
            seq=seq, prev_hash=prev, kind=kind, actor=actor, subject=subject, at=at
        ),
        None,
    )
    assert encoded == expected


def test_plain_events_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(_value: Any) -> bytes:
        raise AssertionError("fell back to rfc8785")

    event = {"v": 1, "type": "document.ingested", "subject": {"sha256": "ab" * 32,
             "size": 12, "tags": ["a", "\u00e9\n\x00"], "deleted": False, "note": None}}
    expected = rfc8785.dumps(event)
    monkeypatch.setattr(_canonical.rfc8785, "dumps", refuse)
    assert canonical_json(event) == expected


@pytest.mark.parametrize(
    "value",
    [
        {"\ue000": 1, "\U0001f600": 2},  # code point order differs from UTF-16 order
        {"a": 1.5},
        {"a": 2**53},
        {"a": (1, 2)},
        {1: "a"},
        "\ud800",
    ],
)
def test_values_outside_the_fast_path_fall_back(value: Any) -> None:
    assert outcome(canonical_json, value) == outcome(rfc8785.dumps, value)


@settings(max_examples=300)
@given(st.datetimes(timezones=st.sampled_from([UTC, None]) | st.timezones()))
def test_event_time_has_the_strftime_digits(moment: datetime) -> None:
    """format_time spells the digits itself; they are those strftime gave (any year)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        return  # outside datetime's range once shifted to UTC
    expected = utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    assert format_time(moment) == expected
