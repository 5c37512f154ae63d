"""Private: the values a PDF signature validation returns (re-exported by ``validation``).

Indications follow ETSI EN 319 102-1 §5.1.3 (main indication + sub-indication). They are
plain strings on the wire (:meth:`DocumentReport.to_dict`), so the API and the CLI show
the standard's own words.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

__all__ = [
    "Coverage",
    "DocumentProblem",
    "DocumentReport",
    "Indication",
    "SignatureKind",
    "SignatureReport",
    "SubIndication",
    "TimestampReport",
]

#: How much of the file a signature's /ByteRange covers (ISO 32000-2 §12.8.1).
Coverage = Literal["entire file", "entire revision", "partial"]
#: What a signature field holds: an approval or certification signature, or a document
#: timestamp (ETSI EN 319 142-1 §5.4.3).
SignatureKind = Literal["approval", "certification", "document_timestamp"]
#: Why the document as a whole could not be validated (stable machine codes).
DocumentProblem = Literal["too_large", "unreadable", "no_signature", "timeout", "crashed"]


class Indication(StrEnum):
    """Main status indications, ETSI EN 319 102-1 §5.1.3 Table 4."""

    TOTAL_PASSED = "TOTAL_PASSED"
    TOTAL_FAILED = "TOTAL_FAILED"
    INDETERMINATE = "INDETERMINATE"


class SubIndication(StrEnum):
    """Sub-indications, ETSI EN 319 102-1 §5.1.3 Table 5 (those dangan can report)."""

    # with TOTAL_FAILED
    FORMAT_FAILURE = "FORMAT_FAILURE"
    HASH_FAILURE = "HASH_FAILURE"
    SIG_CRYPTO_FAILURE = "SIG_CRYPTO_FAILURE"
    REVOKED = "REVOKED"
    # with INDETERMINATE (NOT_YET_VALID and EXPIRED occur with both)
    NOT_YET_VALID = "NOT_YET_VALID"
    SIG_CONSTRAINTS_FAILURE = "SIG_CONSTRAINTS_FAILURE"
    CHAIN_CONSTRAINTS_FAILURE = "CHAIN_CONSTRAINTS_FAILURE"
    CERTIFICATE_CHAIN_GENERAL_FAILURE = "CERTIFICATE_CHAIN_GENERAL_FAILURE"
    CRYPTO_CONSTRAINTS_FAILURE = "CRYPTO_CONSTRAINTS_FAILURE"
    EXPIRED = "EXPIRED"
    TIMESTAMP_ORDER_FAILURE = "TIMESTAMP_ORDER_FAILURE"
    NO_SIGNING_CERTIFICATE_FOUND = "NO_SIGNING_CERTIFICATE_FOUND"
    NO_CERTIFICATE_CHAIN_FOUND = "NO_CERTIFICATE_CHAIN_FOUND"
    REVOKED_NO_POE = "REVOKED_NO_POE"
    REVOKED_CA_NO_POE = "REVOKED_CA_NO_POE"
    OUT_OF_BOUNDS_NO_POE = "OUT_OF_BOUNDS_NO_POE"
    REVOCATION_OUT_OF_BOUNDS_NO_POE = "REVOCATION_OUT_OF_BOUNDS_NO_POE"
    OUT_OF_BOUNDS_NOT_REVOKED = "OUT_OF_BOUNDS_NOT_REVOKED"
    CRYPTO_CONSTRAINTS_FAILURE_NO_POE = "CRYPTO_CONSTRAINTS_FAILURE_NO_POE"
    NO_POE = "NO_POE"
    TRY_LATER = "TRY_LATER"
    SIGNED_DATA_NOT_FOUND = "SIGNED_DATA_NOT_FOUND"


@dataclass(frozen=True)
class TimestampReport:
    """The signature timestamp (RFC 3161 token in id-aa-timeStampToken) of a signature."""

    gen_time: datetime
    """genTime of the token (RFC 3161 §2.4.2): proof the signature existed then."""
    tsa_subject: str
    """The TSA certificate's subject (RFC 4514)."""
    trusted: bool
    """Whether the token verifies and its TSA chains to one of the trust roots."""


@dataclass(frozen=True)
class SignatureReport:
    """The validation of one signature field, with its ETSI EN 319 102-1 §5.1.3 verdict."""

    field_name: str
    """Fully qualified name of the signature field."""
    kind: SignatureKind
    """Approval, certification (ISO 32000-2 §12.8.2.2) or document timestamp."""
    indication: Indication
    """Main indication; TOTAL_PASSED only when every check below passed."""
    sub_indication: SubIndication | None
    """Why it did not pass; None with TOTAL_PASSED."""
    detail: str
    """One human sentence saying what was found."""
    signer_subject: str | None = None
    """Subject of the signing certificate (RFC 4514), when it could be found."""
    signer_certificate_sha256: str | None = None
    """SHA-256 of the signing certificate's DER, hex."""
    signing_time: datetime | None = None
    """The signing time the signer claims (signingTime or /M); not proof of anything."""
    timestamp: TimestampReport | None = None
    """The signature timestamp (for a document timestamp: the token itself), if any."""
    pades_level: Literal["B-B", "B-T", "B-LT", "B-LTA"] | None = None
    """PAdES baseline level seen in the file (ETSI EN 319 142-1 §6)."""
    trusted: bool = False
    """Whether the signing certificate chains to a trust root and is not revoked."""
    trust_anchor: str | None = None
    """Subject of the trust root the chain ends in."""
    coverage: Coverage | None = None
    """How much of the file the /ByteRange covers."""
    modification_level: str | None = None
    """pyHanko's level of what changed after the signature: NONE, LTA_UPDATES,
    FORM_FILLING, ANNOTATIONS or OTHER."""
    changes: tuple[str, ...] = ()
    """What changed after the signature, in short human phrases."""
    docmdp: Literal["no_changes", "fill_forms", "annotate"] | None = None
    """The DocMDP permission (/P, ISO 32000-2 §12.8.2.2.2) of a certification signature."""

    @property
    def passed(self) -> bool:
        return self.indication is Indication.TOTAL_PASSED

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict: enums as strings, datetimes as ISO 8601."""
        return {
            "field_name": self.field_name,
            "kind": self.kind,
            "indication": str(self.indication),
            "sub_indication": _str(self.sub_indication),
            "detail": self.detail,
            "signer_subject": self.signer_subject,
            "signer_certificate_sha256": self.signer_certificate_sha256,
            "signing_time": _iso(self.signing_time),
            "timestamp": None
            if self.timestamp is None
            else {
                "gen_time": _iso(self.timestamp.gen_time),
                "tsa_subject": self.timestamp.tsa_subject,
                "trusted": self.timestamp.trusted,
            },
            "pades_level": self.pades_level,
            "trusted": self.trusted,
            "trust_anchor": self.trust_anchor,
            "coverage": self.coverage,
            "modification_level": self.modification_level,
            "changes": list(self.changes),
            "docmdp": self.docmdp,
        }


@dataclass(frozen=True)
class DocumentReport:
    """Every signature of a PDF and the document's bottom line.

    The bottom line is TOTAL_PASSED only with at least one (non-timestamp) signature and
    every signature and document timestamp TOTAL_PASSED: an empty conjunction fails.
    """

    indication: Indication
    """Bottom line for the whole document."""
    sub_indication: SubIndication | None
    """The sub-indication of the first failed signature, or of the document problem."""
    detail: str
    """One human sentence explaining the bottom line."""
    signatures: tuple[SignatureReport, ...]
    """Signatures and document timestamps, in signing order."""
    validation_time: datetime
    """The time the validation was made for (the ``now`` given)."""
    document_sha256: str
    """SHA-256 of the bytes validated, hex."""
    problem: DocumentProblem | None = None
    """Why the document could not be validated at all, or None."""

    @property
    def passed(self) -> bool:
        return self.indication is Indication.TOTAL_PASSED

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict, for ``POST /v1/validate`` and ``dangan validate``."""
        return {
            "indication": str(self.indication),
            "sub_indication": _str(self.sub_indication),
            "detail": self.detail,
            "problem": self.problem,
            "validation_time": _iso(self.validation_time),
            "document_sha256": self.document_sha256,
            "signatures": [s.to_dict() for s in self.signatures],
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _str(value: StrEnum | None) -> str | None:
    return None if value is None else str(value)
