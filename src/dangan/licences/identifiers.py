"""Electronic-licence identifiers and the check characters they rely on.

An identifier reads ``1.2.156.3005.2.<type code>.<issuer USCC>.<serial>.<version>.<check>``:

    1.2.156.3005.2      the electronic-licence arc
    type code           1–20 characters 0-9 A-Z, the kind of licence
    issuer USCC         the issuer's unified social credit code (GB 32100-2015)
    serial              1–20 characters 0-9 A-Z, unique per issuer and type
    version             1–99, in decimal without leading zeros
    check               ISO/IEC 7064 MOD 37,36 check character

The check character is computed over the alphanumeric characters of everything before it,
prefix included, with the dots left out, because '.' is not in the ISO 7064
alphanumeric alphabet. It catches every single substituted character and nearly every
transposition of adjacent characters; a dot moved between serial and version is not (the
18-character USCC pins the other boundaries). So the check character ``T`` of
``1.2.156.3005.2.0101.91110000600037341L.1.1.T`` covers
``1215630052010191110000600037341L11``.

Errors: :class:`InvalidIdentifier` (422 invalid_licence_identifier), a subclass of
:class:`~dangan.errors.InvalidRequest`, says what is wrong with an identifier or a USCC.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from dangan.errors import InvalidRequest

__all__ = [
    "PREFIX",
    "InvalidIdentifier",
    "LicenceIdentifier",
    "mod37_36_check",
    "mod37_36_valid",
    "new_serial",
    "uscc_check_char",
    "validate_uscc",
]

#: The electronic-licence identifier arc every identifier starts with.
PREFIX = "1.2.156.3005.2"
#: The alphabet of ISO/IEC 7064 MOD 37,36: digits then upper-case letters, values 0–35.
ISO7064_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#: GB 32100-2015 §4: digits and upper-case letters without I, O, Z, S, V; values 0–30.
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
#: GB 32100-2015 §4: weight of each of the first 17 positions (3^(i-1) mod 31).
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_COMPONENT = re.compile(r"[0-9A-Z]{1,20}")
_VERSION = re.compile(r"[1-9][0-9]?")
_SERIAL_DIGITS = 12


class InvalidIdentifier(InvalidRequest):
    code = "invalid_licence_identifier"
    title = "The licence identifier is invalid"
    status = 422


def mod37_36_check(chars: str) -> str:
    """The ISO/IEC 7064 MOD 37,36 check character of ``chars`` (0-9 A-Z only).

    Raises :class:`ValueError` for a character outside the alphabet.
    """
    # ISO/IEC 7064:2003 §9–§10 (GB/T 17710-2008 identical), hybrid system with M = 36:
    # P1 = M; for each character a_j, S_j = (P_j + a_j) mod M, taken as M when 0, and
    # P_{j+1} = 2·S_j mod (M + 1). The check character a makes (P_{n+1} + a) mod M = 1.
    modulus = len(ISO7064_ALPHABET)
    product = modulus
    for char in chars:
        value = ISO7064_ALPHABET.find(char)
        if value < 0:
            raise ValueError(f"{char!r} is not in the ISO 7064 MOD 37,36 alphabet 0-9 A-Z")
        total = (product + value) % modulus or modulus
        product = (2 * total) % (modulus + 1)
    return ISO7064_ALPHABET[(modulus + 1 - product) % modulus]


def mod37_36_valid(chars_with_check: str) -> bool:
    """Whether the last character of ``chars_with_check`` is the MOD 37,36 check of the rest."""
    if len(chars_with_check) < 2 or chars_with_check[-1] not in ISO7064_ALPHABET:
        return False
    try:
        return mod37_36_check(chars_with_check[:-1]) == chars_with_check[-1]
    except ValueError:
        return False


def uscc_check_char(first17: str) -> str:
    """The GB 32100-2015 §4 check character of the first 17 characters of a USCC."""
    if len(first17) != 17 or any(char not in USCC_ALPHABET for char in first17):
        raise InvalidIdentifier(
            "a unified social credit code needs 17 characters from 0-9 and A-Z without "
            "I, O, Z, S, V before its check character"
        )
    # C18 = 31 - (Σ value(C_i)·W_i mod 31), where 31 becomes 0 (GB 32100-2015 §4).
    total = sum(USCC_ALPHABET.index(char) * w for char, w in zip(first17, USCC_WEIGHTS))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def validate_uscc(code: str) -> str:
    """``code`` as an 18-character upper-case USCC (GB 32100-2015 §4), or InvalidIdentifier."""
    normalised = code.strip().upper() if isinstance(code, str) else ""
    if len(normalised) != 18:
        raise InvalidIdentifier(
            f"a unified social credit code has 18 characters, not {len(normalised)}"
        )
    wrong = sorted({char for char in normalised if char not in USCC_ALPHABET})
    if wrong:
        raise InvalidIdentifier(
            f"the unified social credit code contains {', '.join(map(repr, wrong))}; only 0-9 "
            "and A-Z without I, O, Z, S, V are used"
        )
    # Positions 3–8 are the registering authority's administrative division (GB/T 2260).
    if not normalised[2:8].isdigit():
        raise InvalidIdentifier(
            "positions 3 to 8 of a unified social credit code are an administrative "
            "division code of six digits"
        )
    expected = uscc_check_char(normalised[:17])
    if normalised[17] != expected:
        raise InvalidIdentifier(
            f"the unified social credit code {normalised} has the wrong check character "
            f"{normalised[17]!r}; expected {expected!r}"
        )
    return normalised


def new_serial() -> str:
    """A fresh serial: 12 random decimal digits from :mod:`secrets` (never sequential)."""
    return f"{secrets.randbelow(10**_SERIAL_DIGITS):0{_SERIAL_DIGITS}d}"


@dataclass(frozen=True)
class LicenceIdentifier:
    """A licence identifier; :meth:`generate` makes one, :meth:`parse` reads one."""

    type_code: str
    """The licence type: 1–20 characters 0-9 A-Z."""
    issuer_uscc: str
    """The issuing organisation's unified social credit code (GB 32100-2015)."""
    serial: str
    """The licence's serial under its issuer and type: 1–20 characters 0-9 A-Z."""
    version: int
    """The licence version, 1–99: a reissued licence keeps its serial and gets a new version."""
    check: str
    """The ISO/IEC 7064 MOD 37,36 check character over everything before it, dots skipped."""

    def __post_init__(self) -> None:
        for name in ("type_code", "serial"):
            value = getattr(self, name)
            if not isinstance(value, str) or not _COMPONENT.fullmatch(value):
                label = name.replace("_", " ")
                raise InvalidIdentifier(f"the {label} {value!r} must be 1–20 characters 0-9 A-Z")
        if validate_uscc(self.issuer_uscc) != self.issuer_uscc:
            raise InvalidIdentifier("the issuer's unified social credit code must be upper case")
        if isinstance(self.version, bool) or not isinstance(self.version, int):
            raise InvalidIdentifier("the version must be a whole number")
        if not 1 <= self.version <= 99:
            raise InvalidIdentifier(f"the version must be 1 to 99, not {self.version}")
        expected = mod37_36_check(_alphanumerics(self._body()))
        if self.check != expected:
            raise InvalidIdentifier(
                f"the check character of the licence identifier is {self.check!r}; "
                f"expected {expected!r}"
            )

    @classmethod
    def generate(
        cls, *, type_code: str, issuer_uscc: str, serial: str, version: int = 1
    ) -> LicenceIdentifier:
        """The identifier of these components, with its check character computed."""
        uscc = validate_uscc(issuer_uscc)
        body = f"{PREFIX}.{type_code}.{uscc}.{serial}.{version}"
        try:
            check = mod37_36_check(_alphanumerics(body))
        except ValueError:
            check = "?"  # __post_init__ names the faulty component
        return cls(type_code=type_code, issuer_uscc=uscc, serial=serial, version=version,
                   check=check)

    @classmethod
    def parse(cls, text: str) -> LicenceIdentifier:
        """The identifier written as ``text`` (any case); InvalidIdentifier says what is wrong."""
        if not isinstance(text, str):
            raise InvalidIdentifier("a licence identifier is text")
        upper = text.upper()
        if not upper.startswith(PREFIX + "."):
            raise InvalidIdentifier(f"a licence identifier starts with {PREFIX}.")
        parts = upper[len(PREFIX) + 1 :].split(".")
        if len(parts) != 5:
            raise InvalidIdentifier(
                f"a licence identifier has 5 components after {PREFIX} (type code, issuer "
                f"USCC, serial, version, check), not {len(parts)}"
            )
        type_code, uscc, serial, version, check = parts
        if not _VERSION.fullmatch(version):
            raise InvalidIdentifier(
                f"the version {version!r} must be 1 to 99 in decimal without leading zeros"
            )
        if len(check) != 1:
            raise InvalidIdentifier("the check of a licence identifier is a single character")
        if validate_uscc(uscc) != uscc:
            raise InvalidIdentifier("the issuer USCC must be written without spaces")
        return cls(type_code=type_code, issuer_uscc=uscc, serial=serial, version=int(version),
                   check=check)

    def with_version(self, version: int) -> LicenceIdentifier:
        """The same licence at ``version``, with its own check character."""
        return self.generate(
            type_code=self.type_code, issuer_uscc=self.issuer_uscc, serial=self.serial,
            version=version,
        )

    def __str__(self) -> str:
        return f"{self._body()}.{self.check}"

    def _body(self) -> str:
        return f"{PREFIX}.{self.type_code}.{self.issuer_uscc}.{self.serial}.{self.version}"


def _alphanumerics(text: str) -> str:
    """``text`` without its dots: what the check character covers."""
    return text.replace(".", "")
