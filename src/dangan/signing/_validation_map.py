"""Private: from pyHanko's statuses to ETSI EN 319 102-1 §5.1.3 indications.

Each check is a small stage returning a :data:`Verdict` when it fails, or None; the
first failing stage decides, in the order of EN 319 102-1 §5.2 (format checking §5.2.2,
signing-certificate identification §5.2.3, cryptographic verification §5.2.7, X.509
validation §5.2.6, signature acceptance §5.2.8). TOTAL_PASSED comes only when every stage
passes *and* pyHanko's own ``bottom_line`` agrees.

Changes made after a signature that its DocMDP (ISO 32000-2 §12.8.2.2.2) or the default
policy does not allow are a format-checking failure: TOTAL_FAILED/FORMAT_FAILURE, as the
EU DSS validator files its DocMDP and page-difference checks under format checking.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from pyhanko.sign.ades.report import AdESFailure, AdESSubIndic
from pyhanko.sign.diff_analysis import DiffResult, ModificationLevel, SuspiciousModification
from pyhanko.sign.validation.status import (
    DocumentTimestampStatus,
    ModificationInfo,
    PdfSignatureStatus,
    SignatureCoverageLevel,
    SignatureStatus,
)

from dangan.signing._validation_report import Indication, SubIndication

#: (main indication, sub-indication, human detail) of a failed stage.
Verdict = tuple[Indication, SubIndication, str]

_FAILED, _INDETERMINATE = Indication.TOTAL_FAILED, Indication.INDETERMINATE
_COVERAGE = {
    SignatureCoverageLevel.ENTIRE_FILE: "entire file",
    SignatureCoverageLevel.ENTIRE_REVISION: "entire revision",
}


def from_ades(
    sub: AdESSubIndic | None, fallback: SubIndication
) -> tuple[Indication, SubIndication]:
    """pyHanko's AdES sub-indication as dangan's, with its main indication."""
    main = _FAILED if isinstance(sub, AdESFailure) else _INDETERMINATE
    name = getattr(sub, "name", None)
    return main, SubIndication.__members__.get(name or "", fallback)


def coverage_name(level: SignatureCoverageLevel | None) -> str:
    return _COVERAGE.get(level, "partial") if level is not None else "partial"


def changes_after(info: ModificationInfo, later_revisions: int) -> tuple[str, ...]:
    """A short human list of what changed after the signature."""
    if later_revisions == 0:
        return ()
    said = [f"{later_revisions} incremental update(s) after the signature"]
    diff = info.diff_result
    if isinstance(diff, SuspiciousModification):
        return (*said, f"changes no policy allows: {diff}")
    level = info.modification_level
    if level is ModificationLevel.LTA_UPDATES:
        said.append("validation data (DSS) or document timestamps added")
    elif level is ModificationLevel.FORM_FILLING:
        said.append("form fields filled or signed")
    elif level is ModificationLevel.ANNOTATIONS:
        said.append("annotations added, changed or removed")
    elif level is ModificationLevel.OTHER:
        said.append("changes beyond form filling and annotations (e.g. page content)")
    if isinstance(diff, DiffResult) and diff.changed_form_fields:
        said.append("form fields changed: " + ", ".join(sorted(diff.changed_form_fields)))
    return tuple(said)


def signature_verdict(status: PdfSignatureStatus) -> Verdict | None:
    """The first failing check of an approval/certification signature, or None."""
    for stage in _SIGNATURE_STAGES:
        verdict = stage(status)
        if verdict is not None:
            return verdict
    if not status.bottom_line:  # belt and braces: never pass what pyHanko fails
        detail = "pyHanko's bottom line fails"
        return _INDETERMINATE, SubIndication.SIG_CONSTRAINTS_FAILURE, detail
    return None


def timestamp_verdict(status: DocumentTimestampStatus) -> Verdict | None:
    """The first failing check of a document timestamp (ETSI EN 319 142-1 §5.4.3), or None."""
    for stage in (_crypto, _coverage, _lta_modifications, _trust):
        verdict = stage(status)
        if verdict is not None:
            return verdict
    return None


def _crypto(status: SignatureStatus) -> Verdict | None:
    if not status.intact:  # EN 319 102-1 §5.2.7: the message digest does not match
        return _FAILED, SubIndication.HASH_FAILURE, "the signed bytes were changed"
    if not status.valid:
        return _FAILED, SubIndication.SIG_CRYPTO_FAILURE, "the signature value does not verify"
    return None


def _coverage(status: ModificationInfo) -> Verdict | None:
    if status.coverage not in _COVERAGE:
        return _FAILED, SubIndication.FORMAT_FAILURE, "the signature does not cover its revision"
    return None


def _modifications(status: PdfSignatureStatus) -> Verdict | None:
    if isinstance(status.diff_result, SuspiciousModification):
        detail = f"not allowed after signing: {status.diff_result}"
        return _FAILED, SubIndication.FORMAT_FAILURE, detail
    if status.modification_level is ModificationLevel.OTHER or status.docmdp_ok is not True:
        level = status.modification_level
        name = level.name if level is not None else "unknown"
        return _FAILED, SubIndication.FORMAT_FAILURE, f"changes after signing ({name}) not allowed"
    return None


def _lta_modifications(status: DocumentTimestampStatus) -> Verdict | None:
    if isinstance(status.diff_result, SuspiciousModification) or (
        status.modification_level is ModificationLevel.OTHER
    ):
        return _FAILED, SubIndication.FORMAT_FAILURE, "not allowed after the document timestamp"
    return None


def _revocation(status: PdfSignatureStatus) -> Verdict | None:
    """EN 319 102-1 §5.1.3: REVOKED only with proof the signature was made after revocation.

    The only proof of existence (POE) read here is a trusted signature timestamp: if its
    genTime is at or after the revocation, TOTAL_FAILED/REVOKED; otherwise
    INDETERMINATE/REVOKED_NO_POE (or REVOKED_CA_NO_POE). Past-signature validation
    (§5.6.2.4), which could turn an earlier POE into a pass, is not done.
    """
    details = status.revocation_details
    if details is None:
        return None
    if details.ca_revoked:
        return _INDETERMINATE, SubIndication.REVOKED_CA_NO_POE, "a CA certificate is revoked"
    tst = status.timestamp_validity
    if tst is not None and tst.trusted and _at_or_after(tst.timestamp, details.revocation_date):
        return _FAILED, SubIndication.REVOKED, "signed after the signer's certificate was revoked"
    return _INDETERMINATE, SubIndication.REVOKED_NO_POE, "the signer's certificate is revoked"


def _trust(status: SignatureStatus) -> Verdict | None:
    if status.trust_problem_indic is not None:
        fallback = SubIndication.CERTIFICATE_CHAIN_GENERAL_FAILURE
        main, sub = from_ades(status.trust_problem_indic, fallback)
        return main, sub, f"the certificate chain does not validate ({sub})"
    if status.validation_path is None or not status.trusted:
        sub = SubIndication.NO_CERTIFICATE_CHAIN_FOUND
        return _INDETERMINATE, sub, "no chain to a trust root"
    return None


def _signature_timestamp(status: PdfSignatureStatus) -> Verdict | None:
    """A timestamp that does not validate proves nothing; the signature cannot pass."""
    tst = status.timestamp_validity
    if tst is None:
        return None
    if not (tst.intact and tst.valid):
        detail = "the signature timestamp does not verify"
        return _INDETERMINATE, SubIndication.SIG_CONSTRAINTS_FAILURE, detail
    if not tst.trusted:
        _, sub = from_ades(tst.trust_problem_indic, SubIndication.NO_CERTIFICATE_CHAIN_FOUND)
        return _INDETERMINATE, sub, "the signature timestamp's TSA is not trusted"
    return None


def _seed_values(status: PdfSignatureStatus) -> Verdict | None:
    if not status.seed_value_ok:
        detail = "the field's seed values are not met"
        return _INDETERMINATE, SubIndication.SIG_CONSTRAINTS_FAILURE, detail
    return None


def _at_or_after(moment: datetime, reference: datetime) -> bool:
    return moment >= reference


_SIGNATURE_STAGES: Sequence[Callable[[PdfSignatureStatus], Verdict | None]] = (
    _crypto,
    _coverage,
    _modifications,
    _revocation,
    _trust,
    _signature_timestamp,
    _seed_values,
)
