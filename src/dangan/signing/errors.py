"""Errors of the signing package.

    DanganError
    └── SigningError                500 signing_error
        ├── KeySourceError          500 key_source_unavailable
        ├── DevPkiError             500 dev_pki_invalid
        └── TsaConfigurationError   500 tsa_configuration_invalid

All three are operator problems (a wrong passphrase, a damaged key file, a TSA set up with
the wrong certificate), not client errors, hence HTTP 500. Messages never carry key
material or the underlying library's text about decryption (no oracle).
"""

from __future__ import annotations

from dangan.errors import DanganError


class SigningError(DanganError):
    """Root of the signing package's errors."""

    code = "signing_error"
    title = "Signing failed"
    status = 500


class KeySourceError(SigningError):
    """A key source (a PKCS#12 file) is missing, damaged, or the passphrase is wrong."""

    code = "key_source_unavailable"
    title = "The signing key cannot be loaded"


class DevPkiError(SigningError):
    """The development PKI directory is incomplete, unreadable or inconsistent."""

    code = "dev_pki_invalid"
    title = "The development PKI cannot be used"


class TsaConfigurationError(SigningError):
    """The Time-Stamp Authority was given a certificate, key or option it cannot use."""

    code = "tsa_configuration_invalid"
    title = "The Time-Stamp Authority is misconfigured"
