"""Where a seal's key lives, as registered, and the opened key sources of one process.

A seal names its key in one of three ways (the ``key`` object of ``POST /v1/seals``):

    {"type": "dev", "key_type": "rsa2048" | "p256"}
        the development PKI issues a seal certificate for the organisation (DEVELOPMENT —
        NOT TRUSTED) and keeps the key in a PKCS#12 file of its directory;
    {"type": "pkcs12", "path": …, "passphrase_file": …}
        a PKCS#12 file and a file holding its passphrase, both under DANGAN_KEY_DIR;
    {"type": "pkcs11", "module": …, "token_label": …, "key_label" | "key_id": …,
     "pin_file": …, "certificate_file"?: …}
        a key on a PKCS#11 token; the module must be listed in DANGAN_PKCS11_MODULES and
        the files must lie under DANGAN_KEY_DIR.

Paths are checked so that an API key holder cannot make the service read arbitrary files
or load arbitrary libraries. What is stored names files, never secrets. Key sources are
opened once per process and kept (:class:`KeyRing`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, get_args

from cryptography import x509

from dangan.config import Settings
from dangan.errors import InvalidRequest
from dangan.signing.keys import KeySource, KeySourceConfig, SigningCredential, key_source_from_config
from dangan.signing._x509 import KeyType
from dangan.signing.pki import DevPki

_KEY_TYPES: tuple[str, ...] = get_args(KeyType)


class KeyRing:
    """The key sources this process has opened, by name; each is opened once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sources: dict[str, KeySource] = {}

    def credential(self, name: str, config: Mapping[str, Any]) -> SigningCredential:
        """The signer of the key source ``config`` (stored form), opened on first use."""
        with self._lock:
            source = self._sources.get(name)
            if source is None:
                source = key_source_from_config(stored_to_config(config))
                self._sources[name] = source
        return source.credential()

    def forget(self, name: str) -> None:
        """Close and drop a source (e.g. its seal was revoked)."""
        with self._lock:
            source = self._sources.pop(name, None)
        if source is not None:
            source.close()

    def close(self) -> None:
        """Close every opened source."""
        with self._lock:
            sources, self._sources = list(self._sources.values()), {}
        for source in sources:
            source.close()


def stored_to_config(stored: Mapping[str, Any]) -> KeySourceConfig:
    """The :class:`KeySourceConfig` of a stored key-source description."""
    if stored.get("kind") == "pkcs12":
        return KeySourceConfig(
            kind="pkcs12",
            path=Path(stored["path"]),
            passphrase_file=Path(stored["passphrase_file"]),
        )
    return KeySourceConfig(
        kind="pkcs11",
        module_path=Path(stored["module_path"]),
        token_label=stored["token_label"],
        key_label=stored.get("key_label"),
        key_id=bytes.fromhex(stored["key_id"]) if stored.get("key_id") else None,
        pin_file=Path(stored["pin_file"]),
        certificate_file=Path(stored["certificate_file"])
        if stored.get("certificate_file")
        else None,
    )


def resolve_key_request(
    request: Mapping[str, Any],
    *,
    settings: Settings,
    pki: DevPki,
    organisation: str,
    now: datetime,
) -> dict[str, Any]:
    """The stored form of the ``key`` object of a seal registration.

    ``dev`` issues the certificate now. Raises :class:`InvalidRequest` for unknown types,
    paths outside DANGAN_KEY_DIR and modules not in DANGAN_PKCS11_MODULES.
    """
    kind = request.get("type", "dev")
    if kind == "dev":
        key_type = request.get("key_type", "rsa2048")
        if key_type not in _KEY_TYPES:
            raise InvalidRequest(f"key_type must be one of {', '.join(_KEY_TYPES)}")
        issued = pki.issue_seal_certificate(organisation=organisation, key_type=key_type, now=now)
        return {
            "kind": "pkcs12",
            "path": str(issued.pkcs12_path),
            "passphrase_file": str(settings.effective_pki_passphrase_file),
        }
    if kind == "pkcs12":
        return {
            "kind": "pkcs12",
            "path": str(_under_key_dir(request.get("path"), settings, "path")),
            "passphrase_file": str(
                _under_key_dir(request.get("passphrase_file"), settings, "passphrase_file")
            ),
        }
    if kind == "pkcs11":
        module = request.get("module")
        allowed = {os.path.realpath(m) for m in settings.pkcs11_modules}
        if not isinstance(module, str) or os.path.realpath(module) not in allowed:
            raise InvalidRequest(
                "the PKCS#11 module must be one listed in DANGAN_PKCS11_MODULES",
                allowed=sorted(settings.pkcs11_modules),
            )
        token_label, key_label, key_id = (
            request.get("token_label"),
            request.get("key_label"),
            request.get("key_id"),
        )
        if not isinstance(token_label, str) or not token_label:
            raise InvalidRequest("a pkcs11 key needs token_label")
        if not (isinstance(key_label, str) and key_label) and not isinstance(key_id, str):
            raise InvalidRequest("a pkcs11 key needs key_label or key_id (hex)")
        if isinstance(key_id, str):
            try:
                bytes.fromhex(key_id)
            except ValueError:
                raise InvalidRequest("key_id must be hexadecimal") from None
        stored: dict[str, Any] = {
            "kind": "pkcs11",
            "module_path": module,
            "token_label": token_label,
            "key_label": key_label,
            "key_id": key_id,
            "pin_file": str(_under_key_dir(request.get("pin_file"), settings, "pin_file")),
        }
        if request.get("certificate_file") is not None:
            stored["certificate_file"] = str(
                _under_key_dir(request["certificate_file"], settings, "certificate_file")
            )
        return stored
    raise InvalidRequest(f"unknown key type {kind!r}: dev, pkcs12 or pkcs11")


def check_seal_certificate(certificate: x509.Certificate, *, now: datetime) -> None:
    """:class:`InvalidRequest` unless the certificate is valid at ``now`` and may sign."""
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise InvalidRequest("the seal certificate is not valid now")
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not (usage.digital_signature or usage.content_commitment):
        raise InvalidRequest("the seal certificate's key usage does not allow signatures")


def _under_key_dir(value: object, settings: Settings, field: str) -> Path:
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{field} is required")
    root = settings.effective_key_dir.resolve()
    path = (root / value).resolve()
    if not path.is_relative_to(root):
        raise InvalidRequest(f"{field} must lie under DANGAN_KEY_DIR ({root})")
    if not path.is_file():
        raise InvalidRequest(f"{field}: no file {path}")
    return path
