"""Licence holders: checking their ID numbers, masking them for display, and the keyed
hash other departments search by.

The public page and the QR token show only a masked name (张*明); the API shows only a
masked ID number. Searches go through ``holder_key``, an HMAC-SHA256 of the ID type and
number under a secret of the deployment, so neither the database index nor a search
request reveals the plain number, and a stolen table cannot be reversed by hashing every
possible ID number without the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from dangan.errors import BackendUnavailable, InvalidMetadata
from dangan.licences.identifiers import InvalidIdentifier, validate_uscc

HolderIdType = Literal["resident_id", "uscc", "passport", "other"]
HOLDER_ID_TYPES: tuple[str, ...] = get_args(HolderIdType)
#: Labels for the ID type on the licence.
ID_TYPE_LABELS: dict[str, tuple[str, str]] = {
    "resident_id": ("公民身份号码", "Resident ID number"),
    "uscc": ("统一社会信用代码", "Unified social credit code"),
    "passport": ("护照号码", "Passport number"),
    "other": ("证件号码", "ID number"),
}
_RESIDENT_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


@dataclass(frozen=True)
class Holder:
    """Who a licence is issued to."""

    name: str
    """Name of the person or organisation, as on the licence."""
    id_type: str
    """One of :data:`HOLDER_ID_TYPES`."""
    id_number: str
    """The ID number, normalised (upper case, no spaces)."""

    @property
    def masked_name(self) -> str:
        """The name for public display."""
        return mask_name(self.name)

    @property
    def masked_id(self) -> str:
        """The ID number for display to authorised callers."""
        return mask_id_number(self.id_number)


def check_holder(*, name: str, id_type: str, id_number: str) -> Holder:
    """A :class:`Holder` with its ID number checked (:class:`InvalidMetadata` if wrong)."""
    name = " ".join(name.split())
    if not 1 <= len(name) <= 200:
        raise InvalidMetadata("holder.name must be 1 to 200 characters")
    if id_type not in HOLDER_ID_TYPES:
        raise InvalidMetadata(f"holder.id_type must be one of {', '.join(HOLDER_ID_TYPES)}")
    number = "".join(id_number.split()).upper()
    if not 2 <= len(number) <= 40 or not number.isascii() or not number.isalnum():
        raise InvalidMetadata("holder.id_number must be 2 to 40 letters and digits")
    if id_type == "resident_id":
        _check_resident_id(number)
    elif id_type == "uscc":
        try:
            number = validate_uscc(number)
        except InvalidIdentifier as exc:
            raise InvalidMetadata(f"holder.id_number: {exc.detail}") from exc
    return Holder(name=name, id_type=id_type, id_number=number)


def _check_resident_id(number: str) -> None:
    """GB 11643-1999: 17 digits and a check character (ISO 7064 MOD 11-2; 10 is 'X')."""
    if len(number) != 18 or not number[:17].isdigit():
        raise InvalidMetadata("holder.id_number: a resident ID number has 17 digits and a check")
    total = sum(int(d) * w for d, w in zip(number[:17], _RESIDENT_ID_WEIGHTS))
    expected = "10X98765432"[total % 11]
    if number[17] != expected:
        raise InvalidMetadata("holder.id_number: the resident ID number's check character is wrong")


def mask_name(name: str) -> str:
    """张三 → 张*, 张三明 → 张*明, 欧阳小明 → 欧**明; longer (organisation) names keep two
    characters at each end around four stars, whatever their length; Latin names keep
    each word's first letter (at most three words). Short and bounded: it goes into the
    QR token."""
    if name.isascii():
        words = name.split()
        words = words if len(words) <= 3 else [*words[:2], words[-1]]
        return " ".join(w[0] + "*" * max(1, min(len(w) - 1, 4)) for w in words)
    n = len(name)
    if n <= 2:
        return name[0] + "*"
    if n <= 6:
        return name[0] + "*" * (n - 2) + name[-1]
    return name[:2] + "****" + name[-2:]


def mask_id_number(number: str) -> str:
    """The first three and last two characters, the rest masked (110**************3X)."""
    if len(number) <= 5:
        return number[0] + "*" * (len(number) - 1)
    return number[:3] + "*" * (len(number) - 5) + number[-2:]


class HolderIndex:
    """The keyed hash (HMAC-SHA256, RFC 2104) that licences are found by."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("the holder-index secret must have at least 32 bytes")
        self._secret = secret

    @classmethod
    def from_file(cls, path: Path, *, create: bool = False) -> HolderIndex:
        """The secret kept in ``path`` (made, random and mode 0600, when ``create``)."""
        try:
            return cls(bytes.fromhex(path.read_text().strip()))
        except FileNotFoundError:
            if not create:
                raise BackendUnavailable(
                    f"no holder-index secret at {path}: run 'dangan init'"
                ) from None
        path.parent.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secret.hex().encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        return cls(secret)

    def key(self, id_type: str, id_number: str) -> str:
        """Hex HMAC of the normalised ID type and number."""
        number = "".join(id_number.split()).upper()
        message = f"{id_type}:{number}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()
