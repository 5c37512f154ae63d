"""Licence types (证照类型): what a licence holds, how it looks, how long it is valid,
and who issues it with which seal.

A type is defined by a JSON document (see ``licences/data/types/`` for two complete
examples)::

    {"code": "SPJY",                                   # [0-9A-Z]{1,20}, part of identifiers
     "name": {"zh": "食品经营许可证", "en": "Food Business Licence"},
     "organisation": "示范市市场监督管理局",            # who issues it (API keys act for it)
     "issuer_uscc": "11330100MB0000000X",              # its unified social credit code
     "holder": {"label": {"zh": …, "en": …}, "id_types": ["uscc", "resident_id"]},
     "schema": {…JSON Schema (2020-12) of the type's fields…},
     "template": {"fields": [{"key": …, "label": {"zh": …, "en": …}}, …]},
     "validity": {"years": 5, "max_years": 5, "open_ended": false}}

Registering a type is a ``licence_type.registered`` ledger entry. Types are not edited in
place: a changed definition is a new type code, so every issued licence keeps meaning
what it meant when it was issued.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cached_property
from importlib import resources
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator
from sqlalchemy import Connection, select

from dangan.clients import Client
from dangan.db.tables import licence_types
from dangan.errors import Conflict, Forbidden, InvalidMetadata, InvalidRequest, NotFound
from dangan.ledger.log import LedgerEntry, append_event
from dangan.licences.holders import HOLDER_ID_TYPES
from dangan.licences.identifiers import InvalidIdentifier, validate_uscc

_CODE = re.compile(r"[0-9A-Z]{1,20}")
#: Field keys: safe as JSON keys, form names and PDF labels alike.
_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")


class LicenceTypeExists(Conflict):
    code = "licence_type_exists"
    title = "A licence type with this code is already registered"


@dataclass(frozen=True)
class FieldLabel:
    """One field of the type as printed on the licence, in order."""

    key: str
    """Property name in the type's schema."""
    zh: str
    """Chinese label."""
    en: str
    """English label."""


@dataclass(frozen=True)
class Validity:
    """How long a licence of the type is valid."""

    years: int | None
    """Default term from the start date; ``None``: no end date (长期) by default."""
    max_years: int | None
    """Longest term an issuer may set; ``None``: no limit."""
    open_ended: bool
    """Whether a licence may have no end date."""

    def period(
        self,
        *,
        type_code: str,
        valid_from: date | None,
        valid_until: date | None,
        open_ended: bool,
        today: date,
    ) -> tuple[date, date | None]:
        """The first and last day (``None``: no end) of a licence issued ``today`` with
        what the request asked for; :class:`InvalidMetadata` when the rules forbid it."""
        start = valid_from or today
        if start > today:
            raise InvalidMetadata(
                "valid_from must not lie in the future; issue the licence on its first day"
            )
        if open_ended:
            if not self.open_ended:
                raise InvalidMetadata(f"licences of type {type_code} must have an end date")
            return start, None
        end = valid_until
        if end is None:
            if self.years is None:
                return start, None
            end = add_years(start, self.years) - timedelta(days=1)
        if end < start:
            raise InvalidMetadata("valid_until must not be before valid_from")
        if end < today:
            raise InvalidMetadata("valid_until has already passed")
        if self.max_years is not None and end >= add_years(start, self.max_years):
            raise InvalidMetadata(
                f"licences of type {type_code} are valid for at most {self.max_years} years"
            )
        return start, end


def add_years(day: date, years: int) -> date:
    """The same day ``years`` later; from 29 February, 1 March (so that a term starting
    then ends on the last day of February)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return date(day.year + years, 3, 1)


@dataclass(frozen=True)
class LicenceType:
    """A registered licence type."""

    code: str
    """Type code, the identifier's ``<type code>`` component."""
    name_zh: str
    name_en: str
    organisation: str
    """The issuing organisation; only API keys acting for it issue licences of the type."""
    issuer_uscc: str
    """The issuing organisation's unified social credit code (GB 32100)."""
    seal_id: str
    """The seal licences of the type are sealed with."""
    holder_label: tuple[str, str]
    """(zh, en) label of the holder's name."""
    holder_id_types: tuple[str, ...]
    """ID types a holder may present."""
    schema: Mapping[str, Any]
    """JSON Schema (draft 2020-12) of the fields."""
    fields: tuple[FieldLabel, ...]
    """The fields printed on the licence, in order."""
    validity: Validity
    definition: Mapping[str, Any]
    """The definition as registered (JSON)."""

    @cached_property
    def _validator(self) -> Draft202012Validator:
        return Draft202012Validator(self.schema)

    def check_fields(self, values: Mapping[str, Any]) -> None:
        """:class:`InvalidMetadata` listing every way ``values`` breaks the schema."""
        errors = sorted(self._validator.iter_errors(values), key=lambda e: list(e.absolute_path))
        if errors:
            problems = [
                {"field": "/".join(str(p) for p in e.absolute_path) or "(fields)", "error": e.message}
                for e in errors[:20]
            ]
            raise InvalidMetadata(
                f"the fields do not match licence type {self.code}: "
                + "; ".join(f"{p['field']}: {p['error']}" for p in problems[:3]),
                errors=problems,
            )


def parse_definition(definition: Mapping[str, Any]) -> dict[str, Any]:
    """Check a type definition's shape; returns the fields :func:`register_type` stores."""
    try:
        code = str(definition["code"])
        name = definition["name"]
        holder = definition.get("holder", {})
        template = definition["template"]
        schema = definition["schema"]
        validity = definition.get("validity", {})
        issuer_uscc = validate_uscc(str(definition["issuer_uscc"]))
        organisation = str(definition["organisation"]).strip()
    except KeyError as exc:
        raise InvalidRequest(f"the licence type definition lacks {exc.args[0]!r}") from None
    except InvalidIdentifier as exc:
        raise InvalidRequest(f"issuer_uscc: {exc.detail}") from exc
    if not _CODE.fullmatch(code):
        raise InvalidRequest("code must be 1 to 20 characters of 0-9 and A-Z")
    if not organisation:
        raise InvalidRequest("organisation must not be empty")
    try:
        Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise InvalidRequest(f"schema is not a valid JSON Schema: {exc.message}") from exc
    if schema.get("type") != "object":
        raise InvalidRequest('schema must describe an object ("type": "object")')
    fields = _field_labels(template, schema)
    id_types = tuple(holder.get("id_types", HOLDER_ID_TYPES))
    if not id_types or set(id_types) - set(HOLDER_ID_TYPES):
        raise InvalidRequest(f"holder.id_types must be some of {', '.join(HOLDER_ID_TYPES)}")
    return {
        "code": code,
        "name_zh": _text(name, "zh", "name"),
        "name_en": _text(name, "en", "name"),
        "organisation": organisation,
        "issuer_uscc": issuer_uscc,
        "fields": fields,
        "validity": _validity(validity),
    }


def _text(value: Any, lang: str, where: str) -> str:
    text = value.get(lang) if isinstance(value, Mapping) else None
    if not isinstance(text, str) or not 1 <= len(text.strip()) <= 200:
        raise InvalidRequest(f"{where}.{lang} must be a text of 1 to 200 characters")
    return text.strip()


def _field_labels(template: Any, schema: Mapping[str, Any]) -> tuple[FieldLabel, ...]:
    entries = template.get("fields") if isinstance(template, Mapping) else None
    if not isinstance(entries, list) or len(entries) > 20:
        raise InvalidRequest("template.fields must be a list of at most 20 fields")
    properties = schema.get("properties", {})
    labels = []
    for i, entry in enumerate(entries):
        key = entry.get("key") if isinstance(entry, Mapping) else None
        if not isinstance(key, str) or not _KEY.fullmatch(key) or key not in properties:
            raise InvalidRequest(f"template.fields[{i}].key must name a property of the schema")
        label = entry.get("label")
        labels.append(FieldLabel(key, _text(label, "zh", f"template.fields[{i}].label"),
                                 _text(label, "en", f"template.fields[{i}].label")))
    return tuple(labels)


def _validity(value: Mapping[str, Any]) -> Validity:
    years, max_years = value.get("years"), value.get("max_years")
    for name, v in (("years", years), ("max_years", max_years)):
        if v is not None and (not isinstance(v, int) or not 1 <= v <= 100):
            raise InvalidRequest(f"validity.{name} must be a whole number of years, 1 to 100")
    open_ended = bool(value.get("open_ended", years is None))
    if years is None and not open_ended:
        raise InvalidRequest("validity.years is needed unless open_ended is true")
    if years is not None and max_years is not None and years > max_years:
        raise InvalidRequest("validity.years must not exceed validity.max_years")
    return Validity(years=years, max_years=max_years, open_ended=open_ended)


def register_type(
    conn: Connection,
    *,
    definition: Mapping[str, Any],
    seal_id: str,
    client: Client,
    now: datetime,
) -> tuple[LicenceType, LedgerEntry]:
    """Record a new type and its ``licence_type.registered`` entry (caller's transaction).

    The seal must belong to the type's organisation; the caller checks it is active.
    """
    parsed = parse_definition(definition)
    if parsed["organisation"] != client.organisation:
        raise Forbidden(
            f"this API key acts for {client.organisation!r} and cannot register licence "
            f"types issued by {parsed['organisation']!r}"
        )
    if conn.execute(select(licence_types.c.code).where(licence_types.c.code == parsed["code"])).first():
        raise LicenceTypeExists(f"licence type {parsed['code']} is already registered")
    # One unified social credit code, one issuing organisation: the code is what the
    # identifier, the QR token and the public page name the issuer by.
    other = conn.execute(
        select(licence_types.c.organisation)
        .where(licence_types.c.issuer_uscc == parsed["issuer_uscc"])
        .where(licence_types.c.organisation != parsed["organisation"])
    ).first()
    if other is not None:
        raise Forbidden(
            f"the unified social credit code {parsed['issuer_uscc']} already names "
            f"{other.organisation!r} as issuer"
        )
    text = json.dumps(dict(definition), ensure_ascii=False, sort_keys=True)
    entry = append_event(
        conn,
        kind="licence_type.registered",
        actor=client.id,
        subject={"type": parsed["code"], "seal": seal_id, "definition_sha256": _sha256(text)},
        now=now,
    )
    row = {
        "code": parsed["code"],
        "name_zh": parsed["name_zh"],
        "name_en": parsed["name_en"],
        "organisation": parsed["organisation"],
        "issuer_uscc": parsed["issuer_uscc"],
        "seal_id": seal_id,
        "definition": text,
        "created_by": client.id,
        "created_at": now,
        "ledger_seq": entry.seq,
    }
    conn.execute(licence_types.insert().values(row))
    return _licence_type(row), entry


def get_type(conn: Connection, code: str) -> LicenceType:
    """The type with ``code``; :class:`NotFound` when there is none."""
    row = conn.execute(select(licence_types).where(licence_types.c.code == code)).mappings().first()
    if row is None:
        raise NotFound(f"no licence type {code!r}")
    return _licence_type(row)


def list_types(conn: Connection) -> list[LicenceType]:
    """Every registered type, by code."""
    rows = conn.execute(select(licence_types).order_by(licence_types.c.code)).mappings()
    return [_licence_type(r) for r in rows]


def example_definitions() -> list[dict[str, Any]]:
    """The example types shipped with dangan (food business licence, business licence)."""
    folder = resources.files("dangan.licences") / "data" / "types"
    return [
        json.loads(entry.read_text(encoding="utf-8"))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".json")
    ]


def _licence_type(row: Mapping[str, Any]) -> LicenceType:
    definition = json.loads(row["definition"])
    parsed = parse_definition(definition)
    holder = definition.get("holder", {})
    label = holder.get("label", {"zh": "持证者", "en": "Holder"})
    return LicenceType(
        code=row["code"],
        name_zh=row["name_zh"],
        name_en=row["name_en"],
        organisation=row["organisation"],
        issuer_uscc=row["issuer_uscc"],
        seal_id=row["seal_id"],
        holder_label=(label["zh"], label["en"]),
        holder_id_types=tuple(holder.get("id_types", HOLDER_ID_TYPES)),
        schema=definition["schema"],
        fields=parsed["fields"],
        validity=parsed["validity"],
        definition=definition,
    )


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
