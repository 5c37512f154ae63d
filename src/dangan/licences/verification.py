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
from typing import TYPE_CHECKING, Any, Literal

from dangan.clock import utc_text
from dangan.licences import records
from dangan.licences.token import (
    QrClaims,
    TokenNotRecognised,
    token_bytes,
    verify_token,
)

if TYPE_CHECKING:
    from dangan.licences.service import LicenceService

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
            "checked_at": utc_text(self.checked_at),
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
    verified = service.verified_tokens.get(text)
    if verified is None:
        try:
            raw = token_bytes(text)
            claims, _key = verify_token(raw, service.trust, now=now)
        except TokenNotRecognised as exc:
            # The reason stays in this process's debug log; the caller learns nothing.
            log.debug("token not recognised", extra={"reason": getattr(exc, "_reason", None)})
            return Verification("not_recognised", now, None)
        # token_bytes took only the canonical form, so this is the text as issued.
        verified = service.verified_tokens.put(text, (claims, text.upper().rstrip("=")))
    claims, canonical = verified
    row = records.public_row(service.public_reader, claims.licence)
    if row is None or row.token != canonical:
        return Verification("not_recognised", now, None)
    licence_type = service.licence_type(row.type_code)
    status = _PUBLIC_STATUS[row.status_on(service.today(now))]
    return Verification(
        status,  # type: ignore[arg-type]
        now,
        PublicLicence(
            identifier=claims.licence,
            type_code=licence_type.code,
            type_name_zh=licence_type.name_zh,
            type_name_en=licence_type.name_en,
            issuer=row.organisation,
            issuer_uscc=licence_type.issuer_uscc,
            holder=claims.holder,
            valid_from=row.valid_from,
            valid_until=row.valid_until,
            issued_on=service.today(claims.issued_at),
            pdf_sha256=row.pdf_sha256,
        ),
    )


class VerifiedTokens:
    """Tokens whose signature already checked out, with their claims, by their text.

    A token never changes and neither does its signature's validity while the process
    runs (the trust list is loaded once), so a scan repeated within the process skips
    the base32 decoding and the ECDSA check; the licence's status is read every time.
    Only successes are kept, at most ``max_entries`` (the oldest go first).
    """

    def __init__(self, *, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._entries: dict[str, tuple[QrClaims, str]] = {}

    def get(self, text: str) -> tuple[QrClaims, str] | None:
        return self._entries.get(text)

    def put(self, text: str, value: tuple[QrClaims, str]) -> tuple[QrClaims, str]:
        if self.max_entries == 0:
            return value
        if len(self._entries) >= self.max_entries:
            self._entries.pop(next(iter(self._entries)), None)
        self._entries[text] = value
        return value
