"""Public verification of a licence from its QR token: what anyone who scans it sees.

The token must carry a valid signature of a trusted QR-signing key *and* be the very
token recorded at issuance; otherwise the answer is "not recognised", with nothing
that tells a forger which check failed. A recognised licence shows its live status
(valid, suspended, revoked, expired) and the minimum about it: issuer, type, dates,
identifier, the masked holder name and the issued PDF's fingerprint (DESIGN.md,
"public verification surface").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from dangan.licences import records
from dangan.licences.service import LicenceService
from dangan.licences.token import TokenNotRecognised, token_bytes, token_text, verify_token

log = logging.getLogger("dangan.licences.verify")

PublicStatus = Literal["valid", "suspended", "revoked", "expired", "not_recognised"]
_PUBLIC_STATUS = {"active": "valid", "suspended": "suspended", "revoked": "revoked", "expired": "expired"}


@dataclass(frozen=True)
class PublicLicence:
    """What the public page shows of a recognised licence."""

    identifier: str
    type_code: str
    type_name_zh: str
    type_name_en: str
    issuer: str
    """The issuing organisation."""
    issuer_uscc: str
    holder: str
    """The holder's name, masked (张*明)."""
    valid_from: date
    valid_until: date | None
    issued_on: date
    pdf_sha256: str
    """SHA-256 of the issued PDF, for comparing a copy someone received."""


@dataclass(frozen=True)
class Verification:
    """The answer to one scan."""

    status: PublicStatus
    checked_at: datetime
    licence: PublicLicence | None
    """``None`` when not recognised."""

    def to_json(self) -> dict[str, Any]:
        """The JSON of ``GET /v1/public/licences/verify``."""
        body: dict[str, Any] = {
            "status": self.status,
            "checked_at": self.checked_at.isoformat().replace("+00:00", "Z"),
        }
        lic = self.licence
        if lic is not None:
            body["licence"] = {
                "identifier": lic.identifier,
                "type": {"code": lic.type_code, "name": {"zh": lic.type_name_zh, "en": lic.type_name_en}},
                "issuer": {"name": lic.issuer, "uscc": lic.issuer_uscc},
                "holder": lic.holder,
                "valid_from": lic.valid_from.isoformat(),
                "valid_until": lic.valid_until.isoformat() if lic.valid_until else None,
                "issued_on": lic.issued_on.isoformat(),
                "pdf_sha256": lic.pdf_sha256,
            }
        return body


def verify_public(service: LicenceService, text: str) -> Verification:
    """Verify a scanned token (blocking: one indexed read). Never raises for a bad token."""
    now = service.backends.clock()
    try:
        claims, _key = verify_token(text, service.trust, now=now)
        canonical = token_text(token_bytes(text))
    except TokenNotRecognised as exc:
        # The reason stays in this process's debug log; the caller learns nothing.
        log.debug("token not recognised", extra={"reason": getattr(exc, "_reason", None)})
        return Verification("not_recognised", now, None)
    with service.backends.engine.connect() as conn:
        licence = records.find_by_identifier(conn, claims.licence)
    if licence is None or licence.token != canonical:
        return Verification("not_recognised", now, None)
    licence_type = service.licence_type(licence.type_code)
    status = _PUBLIC_STATUS[licence.status_on(service.today(now))]
    return Verification(
        status,  # type: ignore[arg-type]
        now,
        PublicLicence(
            identifier=licence.identifier,
            type_code=licence_type.code,
            type_name_zh=licence_type.name_zh,
            type_name_en=licence_type.name_en,
            issuer=licence.organisation,
            issuer_uscc=licence_type.issuer_uscc,
            holder=claims.holder,
            valid_from=licence.valid_from,
            valid_until=licence.valid_until,
            issued_on=service.today(licence.issued_at),
            pdf_sha256=licence.pdf_sha256,
        ),
    )
