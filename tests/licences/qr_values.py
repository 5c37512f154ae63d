"""Values shared by the QR-token tests (the fixtures are in :mod:`tests.licences.qr_fixtures`)."""

from __future__ import annotations

import hashlib

from dangan.licences.identifiers import LicenceIdentifier

PUBLIC_URL = "https://licence.example.gov.cn"
QR_PASSPHRASE = b"qr passphrase \xe7\xa0\x81"
ISSUER_USCC = "91110000600037341L"
#: A realistic identifier: 4-character type code, 12-digit serial; 55 characters.
IDENTIFIER = LicenceIdentifier.generate(
    type_code="0101", issuer_uscc=ISSUER_USCC, serial="471689829492"
)
HOLDER = "张*明"
PDF_SHA256 = hashlib.sha256(b"%PDF-1.7 licence").digest()
