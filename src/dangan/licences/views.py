"""How the API shows a licence to issuers and to departments that reuse it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dangan.clock import utc_text
from dangan.licences.records import Licence

if TYPE_CHECKING:
    from dangan.licences.service import LicenceService


def verification_url(service: LicenceService, licence: Licence) -> str:
    """The public page of ``licence`` (the QR's URL, in lower case)."""
    return f"{service.settings.effective_public_url}/v/{licence.token}"


def describe(service: LicenceService, licence: Licence) -> dict[str, Any]:
    """The licence as the API shows it to issuers and departments that reuse it."""
    licence_type = service.licence_type(licence.type_code)
    return {
        "id": licence.id,
        "identifier": licence.identifier,
        "type": {"code": licence_type.code, "name": {"zh": licence_type.name_zh, "en": licence_type.name_en}},
        "issuer": {"organisation": licence.organisation, "uscc": licence_type.issuer_uscc},
        "holder": {
            "name": licence.holder_name,
            "id_type": licence.holder_id_type,
            "id_number_masked": licence.holder_id_masked,
        },
        "fields": licence.fields,
        "valid_from": licence.valid_from.isoformat(),
        "valid_until": licence.valid_until.isoformat() if licence.valid_until else None,
        "status": licence.status_on(service.today()),
        "document": {"id": licence.document_id, "version": 1, "sha256": licence.pdf_sha256},
        "verification_url": verification_url(service, licence),
        "issued_at": utc_text(licence.issued_at),
    }
