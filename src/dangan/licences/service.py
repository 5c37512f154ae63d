"""Issuing licences and managing them: the flow from a request to a sealed, archived,
recorded licence.

    issue   type + holder + fields → checked against the type's schema → identifier →
            rendered A4 PDF (revision 1) → QR token over its digest → QR drawn and the
            type's seal signed in one update (revision 2; B-LT adds its validation data
            in a third) → one transaction: the PDF as a document (``document.ingested``), the licence
            row (``licence.issued``) and the seal's usage-log row
    manage  suspend / reinstate / revoke (with a reason code) and the expiry sweep,
            each a ledger entry
    find    by id, or by holder through the keyed hash of the ID number

The seal's status is checked again inside the transaction, so a seal revoked while a
licence was being sealed never issues it.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from functools import partial
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from dangan.bootstrap import Backends
from dangan.clients import Client
from dangan.config import Settings
from dangan.db.direct import AutocommitReader
from dangan.documents.ingest import record_ingest
from dangan.documents.service import DocumentMetadata
from dangan.errors import BackendUnavailable, Forbidden, InvalidMetadata
from dangan.idempotency import find_replay, fingerprint, idempotent_write
from dangan.ids import new_id
from dangan.ledger.service import receipt_proof
from dangan.licences import records
from dangan.licences.holders import ID_TYPE_LABELS, Holder, HolderIndex, check_holder
from dangan.licences.identifiers import LicenceIdentifier, new_serial
from dangan.licences.qr_key import QrSigningKey, load_qr_keys, trust_list
from dangan.licences.qr_overlay import PT_PER_MM, draw_qr
from dangan.licences.records import Licence
from dangan.licences.render import LicenceField, LicenceRendering, make_qr, render_licence_pdf
from dangan.licences.token import QrClaims, qr_url, sign_token, token_text
from dangan.licences.trust_list import TrustedKey, TrustList
from dangan.licences.types import LicenceType, get_type
from dangan.licences.verification import VerifiedTokens
from dangan.licences.views import describe
from dangan.seals import registry
from dangan.seals.service import SealingService
from dangan.storage import StoredObject

#: A4 portrait, in millimetres.
A4_HEIGHT_MM = 297.0




@dataclass(frozen=True)
class IssueRequest:
    """``POST /v1/licences``."""

    type_code: str
    holder_name: str
    holder_id_type: str
    holder_id_number: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    valid_from: date | None = None
    """First day of validity; default: the day of issue."""
    valid_until: date | None = None
    """Last day of validity; default: from the type's validity rules."""
    open_ended: bool = False
    """No end date (长期), where the type allows it."""
    level: Literal["B-T", "B-LT"] = "B-T"
    operator: str | None = None
    """Who asked, at the approval system (kept in the seal's usage log only)."""


@dataclass(frozen=True)
class _Prepared:
    licence_type: LicenceType
    seal: registry.Seal
    holder: Holder
    identifier: LicenceIdentifier
    valid_from: date
    valid_until: date | None
    pdf: bytes
    """Revision 1: rendered, a blank square where the QR goes (the token's digest)."""
    token: str
    seal_box: tuple[float, float, float, float]
    """Where the seal goes on page 1, in points."""
    draw_qr: Callable[[Any], None]
    """Draws the QR in the sealing revision."""


class LicenceService:
    """Licence issuance and lifecycle of one process."""

    def __init__(
        self,
        *,
        settings: Settings,
        backends: Backends,
        sealing: SealingService,
        qr_key: QrSigningKey,
        trusted_keys: tuple[TrustedKey, ...],
        holder_index: HolderIndex,
    ) -> None:
        self.settings = settings
        self.backends = backends
        self.sealing = sealing
        self.qr_key = qr_key
        #: Every QR-signing key whose tokens verify (the active one and retired ones).
        self.trusted_keys = trusted_keys
        #: The same keys as a trust list, for verifying tokens.
        self.trust = trust_list(
            trusted_keys, issuer=settings.effective_public_url, now=backends.clock()
        )
        self.holder_index = holder_index
        #: Tokens already verified in this process (see verification.VerifiedTokens).
        self.verified_tokens = VerifiedTokens(max_entries=settings.verified_token_cache)
        #: Autocommit reads for public verification.
        self.public_reader = AutocommitReader(backends.engine)
        self.timezone = ZoneInfo(settings.licence_timezone)
        self._types: dict[str, LicenceType] = {}
        self._types_lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, backends: Backends, sealing: SealingService
    ) -> LicenceService:
        """Load the QR-signing keys and the holder-index secret made by ``dangan init``."""
        qr_key, trusted = load_qr_keys(
            settings.qr_key_dir, backends.signing.pki.passphrase, now=backends.clock()
        )
        if qr_key is None:
            raise BackendUnavailable(
                f"no valid QR-signing key in {settings.qr_key_dir}: run 'dangan init'"
            )
        return cls(
            settings=settings,
            backends=backends,
            sealing=sealing,
            qr_key=qr_key,
            trusted_keys=trusted,
            holder_index=HolderIndex.from_file(settings.holder_index_key_file),
        )

    def close(self) -> None:
        """Release the connections of public verification."""
        self.public_reader.close()

    def trust_list(self) -> TrustList:
        """The QR-signing keys as a trust list (``/.well-known/dangan/trust-list.json``)."""
        return trust_list(
            self.trusted_keys, issuer=self.settings.effective_public_url, now=self.backends.clock()
        )

    def today(self, now: datetime | None = None) -> date:
        """The calendar date at the issuer (licence dates are local dates)."""
        return (now or self.backends.clock()).astimezone(self.timezone).date()

    def licence_type(self, code: str, conn: Connection | None = None) -> LicenceType:
        """A registered type (kept once read: types never change)."""
        cached = self._types.get(code)
        if cached is not None:
            return cached
        if conn is None:
            with self.backends.engine.connect() as own:
                found = get_type(own, code)
        else:
            found = get_type(conn, code)
        with self._types_lock:
            self._types[code] = found
        return found

    # --- issuance ----------------------------------------------------------------------

    async def issue(
        self, client: Client, request: IssueRequest, *, idempotency_key: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Issue a licence; (its description with the document receipt, replayed)."""
        fp = fingerprint({"op": "licence.issue", "request": _jsonable(asdict(request))})
        prepared = await asyncio.to_thread(self._prepare, client, request, idempotency_key, fp)
        if isinstance(prepared, dict):
            return prepared, True
        stored = await self.sealing.seal_pdf(
            prepared.seal,
            prepared.pdf,
            page=0,
            box=prepared.seal_box,
            level=request.level,
            reason=f"{prepared.licence_type.name_zh} {prepared.identifier}",
            changes=prepared.draw_qr,
        )
        job, complete = idempotent_write(
            client_id=client.id,
            key=idempotency_key,
            fingerprint=fp,
            write=lambda conn: self._record(conn, client, request, prepared, stored),
            respond=self._answer,
            clock=self.backends.clock,
        )
        return await asyncio.wrap_future(self.backends.writer.submit(job, complete=complete))

    def _prepare(
        self, client: Client, request: IssueRequest, key: str | None, fp: str
    ) -> dict[str, Any] | _Prepared:
        if key is not None:
            with self.backends.engine.connect() as conn:
                replay = find_replay(conn, client_id=client.id, key=key, fingerprint=fp)
            if replay is not None:
                return replay
        licence_type = self.licence_type(request.type_code)
        if licence_type.organisation != client.organisation:
            raise Forbidden(
                f"this API key acts for {client.organisation!r}; licences of type "
                f"{licence_type.code} are issued by {licence_type.organisation!r}"
            )
        with self.backends.engine.connect() as conn:
            seal = registry.get_seal(conn, licence_type.seal_id)
        registry.require_active(seal)
        holder = check_holder(
            name=request.holder_name, id_type=request.holder_id_type, id_number=request.holder_id_number
        )
        if holder.id_type not in licence_type.holder_id_types:
            raise InvalidMetadata(
                f"licence type {licence_type.code} takes holders identified by "
                f"{', '.join(licence_type.holder_id_types)}"
            )
        licence_type.check_fields(request.fields)
        now = self.backends.clock()
        valid_from, valid_until = licence_type.validity.period(
            type_code=licence_type.code,
            valid_from=request.valid_from,
            valid_until=request.valid_until,
            open_ended=request.open_ended,
            today=self.today(now),
        )
        identifier = LicenceIdentifier.generate(
            type_code=licence_type.code, issuer_uscc=licence_type.issuer_uscc, serial=new_serial()
        )
        return self._render(licence_type, seal, holder, identifier, valid_from, valid_until, request, now)

    def _render(
        self,
        licence_type: LicenceType,
        seal: registry.Seal,
        holder: Holder,
        identifier: LicenceIdentifier,
        valid_from: date,
        valid_until: date | None,
        request: IssueRequest,
        now: datetime,
    ) -> _Prepared:
        id_labels = ID_TYPE_LABELS[holder.id_type]
        rendered = render_licence_pdf(
            LicenceRendering(
                title_zh=licence_type.name_zh,
                title_en=licence_type.name_en,
                identifier=str(identifier),
                holder_label_zh=licence_type.holder_label[0],
                holder_label_en=licence_type.holder_label[1],
                holder_name=holder.name,
                holder_id_label_zh=id_labels[0],
                holder_id_label_en=id_labels[1],
                holder_id=holder.id_number,
                fields=tuple(
                    LicenceField(f.zh, f.en, _field_text(request.fields.get(f.key)))
                    for f in licence_type.fields
                    if request.fields.get(f.key) not in (None, "")
                ),
                issuer_name=licence_type.organisation,
                valid_from=valid_from,
                valid_until=valid_until,
                issued_on=self.today(now),
            )
        )
        certificate = self.qr_key.certificate
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            # Its tokens would never verify (a key must be valid at iat).
            raise BackendUnavailable(
                "the QR-signing key's certificate is not valid now: run 'dangan init' to "
                "make a new key, then restart the service"
            )
        claims = QrClaims(
            issuer=licence_type.issuer_uscc,
            issued_at=now,
            expires_at=self._end_of(valid_until),
            licence=str(identifier),
            type_code=licence_type.code,
            holder=holder.masked_name,
            pdf_sha256=hashlib.sha256(rendered.pdf).digest(),
        )
        token = token_text(
            sign_token(claims, key=self.qr_key.private_key, certificate=self.qr_key.certificate)
        )
        qr = make_qr(qr_url(self.settings.effective_public_url, token))
        x, y, width, height = rendered.seal_box_mm
        return _Prepared(
            licence_type, seal, holder, identifier, valid_from, valid_until, rendered.pdf,
            token,
            # The seal's box in points, from the top-left millimetres of the A4 page.
            (x * PT_PER_MM, (A4_HEIGHT_MM - y - height) * PT_PER_MM,
             (x + width) * PT_PER_MM, (A4_HEIGHT_MM - y) * PT_PER_MM),
            partial(draw_qr, qr=qr, box_mm=rendered.qr_box_mm, page_height_mm=A4_HEIGHT_MM),
        )

    def _end_of(self, day: date | None) -> datetime | None:
        """The instant a licence whose last day is ``day`` expires (local midnight after)."""
        if day is None:
            return None
        return datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.timezone)

    def _record(
        self,
        conn: Connection,
        client: Client,
        request: IssueRequest,
        prepared: _Prepared,
        stored: StoredObject,
    ) -> tuple[Licence, Any]:
        seal = registry.get_seal(conn, prepared.seal.id, for_update=True)
        registry.require_active(seal)
        now = self.backends.clock()
        licence_type = prepared.licence_type
        ingested = record_ingest(
            conn,
            client=client,
            meta=DocumentMetadata(
                title=licence_type.name_zh,
                kind="licence",
                organisation=licence_type.organisation,
                external_id=str(prepared.identifier),
            ),
            stored=stored,
            media_type="application/pdf",
            idempotency_key=None,
            now=now,
        )
        document_id = ingested.receipt["id"]
        licence_id = new_id(now)
        licence, entry = records.insert_licence(
            conn,
            {
                "id": licence_id,
                "identifier": str(prepared.identifier),
                "type_code": licence_type.code,
                "organisation": licence_type.organisation,
                "holder_name": prepared.holder.name,
                "holder_id_type": prepared.holder.id_type,
                "holder_id_masked": prepared.holder.masked_id,
                "holder_key": self.holder_index.key(prepared.holder.id_type, prepared.holder.id_number),
                "fields": dict(request.fields),
                "valid_from": prepared.valid_from,
                "valid_until": prepared.valid_until,
                "document_id": document_id,
                "pdf_sha256": stored.sha256,
                "token": prepared.token,
                "issued_by": client.id,
            },
            actor=client.id,
            now=now,
            subject={
                "licence": licence_id,
                "identifier": str(prepared.identifier),
                "type": licence_type.code,
                "document": document_id,
                "sha256": stored.sha256,
                "seal": seal.id,
                "qr_key": self.qr_key.kid.hex(),
            },
        )
        registry.record_use(
            conn, seal_id=seal.id, document_id=document_id, version=1, client=client,
            operator=request.operator, entry=entry,
        )
        return licence, entry

    def _answer(self, conn: Connection, value: tuple[Licence, Any], sealed: Any) -> dict[str, Any]:
        licence, entry = value
        answer = describe(self, licence)
        if sealed is not None:
            answer["ledger"] = receipt_proof(conn, entry, sealed)
        return answer

def _field_text(value: Any) -> str:
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value
