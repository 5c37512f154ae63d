"""The core of an RFC 3161 Time-Stamp Authority: TimeStampReq in, TimeStampResp out.

:meth:`TimestampAuthority.respond` never raises on bad input: a request that cannot be
decoded or that asks for something this TSA does not do gets a ``TimeStampResp`` with
status ``rejection`` and a failInfo bit (RFC 3161 §2.4.2). A granted response carries a
token: CMS SignedData (RFC 5652) over a DER ``TSTInfo``, signed with SHA-256 and RSA
PKCS#1 v1.5 or ECDSA, with the signed attributes content-type, message-digest,
signing-time and signingCertificateV2 (RFC 5816).

Transport (HTTP, RFC 3161 §3.4) lives elsewhere; this module only speaks DER.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar

from asn1crypto import algos, cms, core, tsp
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from dangan.clock import Clock
from dangan.signing import _cms
from dangan.signing.errors import TsaConfigurationError
from dangan.signing.pki import IssuedCredential

__all__ = [
    "MAX_REQUEST_BYTES",
    "SUPPORTED_HASHES",
    "TimestampAuthority",
    "random_tst_serial",
    "request_timestamp",
]

#: Message-imprint hash algorithms accepted, with their digest sizes in bytes.
SUPPORTED_HASHES = {"sha256": 32, "sha384": 48, "sha512": 64}
#: Larger requests are rejected unread. A TimeStampReq without extensions (the only kind
#: accepted) is under 200 bytes.
MAX_REQUEST_BYTES = 16 * 1024


def random_tst_serial() -> int:
    """A TSTInfo serial number: 20 random bytes as a positive integer.

    160 random bits make a collision between any two tokens, from any process or
    machine, negligible without shared state; RFC 3161 §2.4.2 has requesters handle
    serial numbers up to 160 bits.
    """
    return int.from_bytes(secrets.token_bytes(20), "big") or 1


class _Rejection(Exception):
    """Internal: the request is refused with ``fail_info`` (RFC 3161 §2.4.2 PKIFailureInfo)."""

    def __init__(self, fail_info: str, text: str) -> None:
        super().__init__(text)
        self.fail_info = fail_info
        self.text = text


class _TimeStampResp(core.Sequence):
    # RFC 3161 §2.4.2: timeStampToken is OPTIONAL (absent on rejection), which the
    # asn1crypto definition does not allow.
    _fields: ClassVar[list[tuple]] = [
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


@dataclass(frozen=True, kw_only=True)
class TimestampAuthority:
    """An RFC 3161 TSA: one certificate and key, one policy, a clock and serial numbers."""

    certificate: x509.Certificate
    """The TSA certificate: EKU id-kp-timeStamping, alone and critical (RFC 3161 §2.3)."""
    private_key: _cms.SigningKey = field(repr=False)
    """The key of :attr:`certificate`: RSA, or ECDSA on P-256."""
    chain: tuple[x509.Certificate, ...]
    """CA certificates sent with the TSA certificate when a request sets certReq."""
    policy_oid: str
    """The TSA policy (RFC 3161 §2.4.2 TSTInfo.policy), as a dotted OID."""
    accuracy_ms: int
    """How far genTime may be from UTC, in milliseconds (TSTInfo.accuracy); at least 1."""
    clock: Clock
    """Source of genTime; must return timezone-aware datetimes."""
    serials: Callable[[], int] = random_tst_serial
    """Source of unique positive TSTInfo serial numbers."""
    include_tsa_name: bool = True
    """Whether TSTInfo carries the optional tsa field (the certificate's subject)."""
    _signer: _cms.Signer = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_tsa_certificate(self.certificate)
        if not isinstance(self.accuracy_ms, int) or self.accuracy_ms < 1:
            raise TsaConfigurationError("accuracy_ms must be a positive number of milliseconds")
        try:
            core.ObjectIdentifier(self.policy_oid)
        except (ValueError, TypeError) as exc:
            raise TsaConfigurationError(f"{self.policy_oid!r} is not a dotted OID") from exc
        try:
            signer = _cms.Signer.create(
                certificate=self.certificate, private_key=self.private_key, chain=self.chain
            )
        except (TypeError, ValueError) as exc:
            raise TsaConfigurationError(str(exc)) from exc
        object.__setattr__(self, "_signer", signer)

    @classmethod
    def from_credential(
        cls,
        credential: IssuedCredential,
        *,
        policy_oid: str,
        accuracy_ms: int,
        clock: Clock,
        serials: Callable[[], int] = random_tst_serial,
        include_tsa_name: bool = True,
    ) -> TimestampAuthority:
        """A TSA using a credential of the development PKI (or any with the same shape)."""
        return cls(
            certificate=credential.certificate,
            private_key=credential.private_key,
            chain=credential.chain,
            policy_oid=policy_oid,
            accuracy_ms=accuracy_ms,
            clock=clock,
            serials=serials,
            include_tsa_name=include_tsa_name,
        )

    def respond(self, request_der: bytes) -> bytes:
        """The DER TimeStampResp (RFC 3161 §2.4.2) answering the DER ``request_der``."""
        try:
            request = _parse_request(request_der)
            _check_request(request, self.policy_oid)
        except _Rejection as rejection:
            return _rejection(rejection)
        gen_time = _gen_time(self.clock())
        tst_info = self._tst_info(request, gen_time).dump()
        token = self._signer.sign(
            content_type="tst_info",
            content=tst_info,
            signing_time=gen_time,
            include_certificates=bool(request["cert_req"].native),
        )
        status = tsp.PKIStatusInfo({"status": "granted"})
        return _TimeStampResp({"status": status, "time_stamp_token": token}).dump()

    def _serial(self) -> int:
        serial = self.serials()
        # §2.4.2: a positive integer unique per token, which requesters read up to 160 bits.
        if not isinstance(serial, int) or not 0 < serial < 2**160:
            raise TsaConfigurationError("the serial number source returned an unusable value")
        return serial

    def _tst_info(self, request: tsp.TimeStampReq, gen_time: datetime) -> tsp.TSTInfo:
        """TSTInfo of RFC 3161 §2.4.2; ordering keeps its DEFAULT FALSE and is omitted."""
        fields: dict[str, object] = {
            "version": "v1",
            "policy": self.policy_oid,
            "message_imprint": _der_imprint(request["message_imprint"]),
            "serial_number": self._serial(),
            "gen_time": gen_time,
            "accuracy": _accuracy(self.accuracy_ms),
        }
        if request["nonce"].native is not None:
            # §2.4.2: the nonce MUST be present, with the same value, if it was in the request.
            fields["nonce"] = request["nonce"].native
        if self.include_tsa_name:
            fields["tsa"] = self._signer.subject_general_name()
        return tsp.TSTInfo(fields)


def request_timestamp(
    data: bytes,
    *,
    nonce: bool = True,
    cert_req: bool = True,
    hash_algorithm: str = "sha256",
    policy_oid: str | None = None,
) -> bytes:
    """A DER TimeStampReq (RFC 3161 §2.4.1) for ``data``, hashed with ``hash_algorithm``.

    The nonce, when asked for, is a random positive 64-bit integer.
    """
    if hash_algorithm not in SUPPORTED_HASHES:
        raise ValueError(f"unsupported hash algorithm {hash_algorithm!r}")
    imprint = tsp.MessageImprint(
        {
            "hash_algorithm": algos.DigestAlgorithm({"algorithm": hash_algorithm}),
            "hashed_message": hashlib.new(hash_algorithm, data).digest(),
        }
    )
    fields: dict[str, object] = {"version": "v1", "message_imprint": imprint, "cert_req": cert_req}
    if nonce:
        fields["nonce"] = secrets.randbits(64) or 1
    if policy_oid is not None:
        fields["req_policy"] = policy_oid
    return tsp.TimeStampReq(fields).dump()


def _parse_request(request_der: bytes) -> tsp.TimeStampReq:
    if not isinstance(request_der, bytes | bytearray | memoryview):
        raise _Rejection("bad_data_format", "The request is not DER bytes.")
    if len(request_der) > MAX_REQUEST_BYTES:
        raise _Rejection("bad_data_format", "The request is too large.")
    try:
        request = tsp.TimeStampReq.load(bytes(request_der), strict=True)
        _ = request.native  # asn1crypto decodes lazily; this walks every field now
    except Exception as exc:
        # Untrusted bytes: asn1crypto reports malformed DER with ValueError, TypeError,
        # OverflowError and others. Whatever fails to decode is badDataFormat (§2.4.2).
        raise _Rejection("bad_data_format", "The request is not a DER TimeStampReq.") from exc
    return request


def _check_request(request: tsp.TimeStampReq, policy_oid: str) -> None:
    """Refuse what this TSA does not do, with the failInfo of RFC 3161 §2.4.2."""
    if request["version"].native != "v1":
        raise _Rejection("bad_request", "Only TimeStampReq version 1 is supported.")
    algorithm = request["message_imprint"]["hash_algorithm"]
    name = algorithm["algorithm"].native
    if name not in SUPPORTED_HASHES:
        raise _Rejection("bad_alg", "The message imprint hash algorithm is not supported.")
    # Parameters other than NULL or absent (RFC 5754 §2) already failed to decode: the
    # asn1crypto definition of DigestAlgorithm allows nothing else for SHA-2.
    if len(request["message_imprint"]["hashed_message"].native) != SUPPORTED_HASHES[name]:
        raise _Rejection("bad_data_format", "The message imprint has the wrong length.")
    requested_policy = request["req_policy"]
    if requested_policy.native is not None and requested_policy.dotted != policy_oid:
        raise _Rejection("unaccepted_policy", "The requested policy is not supported.")
    # §2.4.1: an extension the TSA does not recognise, critical or not, is refused.
    if request["extensions"].native:
        raise _Rejection("unaccepted_extensions", "Request extensions are not supported.")


def _der_imprint(imprint: tsp.MessageImprint) -> tsp.MessageImprint:
    """The request's imprint re-encoded as DER, NULL or absent parameters kept as sent.

    §2.4.2: TSTInfo.messageImprint has the same value as in the request, and TSTInfo is
    DER; copying the request's bytes would carry over any BER the parser tolerated.
    """
    algorithm = imprint["hash_algorithm"]
    absent = isinstance(algorithm["parameters"], core.Void)
    return tsp.MessageImprint(
        {
            "hash_algorithm": {
                "algorithm": algorithm["algorithm"].dotted,
                "parameters": None if absent else core.Null(),
            },
            "hashed_message": imprint["hashed_message"].native,
        }
    )


def _rejection(rejection: _Rejection) -> bytes:
    status = tsp.PKIStatusInfo(
        {
            "status": "rejection",
            "status_string": [rejection.text],
            "fail_info": {rejection.fail_info},
        }
    )
    return _TimeStampResp({"status": status}).dump()


def _gen_time(now: datetime) -> datetime:
    """genTime in UTC, cut to milliseconds, the unit of the accuracy we state.

    RFC 3161 §2.4.2: GeneralizedTime in UTC ("Z"), fraction of seconds without trailing
    zeros (asn1crypto drops them, and the fraction when it is zero).
    """
    if now.tzinfo is None:
        raise TsaConfigurationError("the TSA clock returned a naive datetime")
    now = now.astimezone(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _accuracy(accuracy_ms: int) -> tsp.Accuracy:
    # §2.4.2: millis is 1..999; a missing component counts as zero, so zeros are left out.
    seconds, millis = divmod(accuracy_ms, 1000)
    fields = {}
    if seconds:
        fields["seconds"] = seconds
    if millis:
        fields["millis"] = millis
    return tsp.Accuracy(fields)


def _check_tsa_certificate(certificate: x509.Certificate) -> None:
    """RFC 3161 §2.3: exactly one EKU, id-kp-timeStamping, in an extension marked critical."""
    try:
        eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound as exc:
        raise TsaConfigurationError("the TSA certificate lacks extendedKeyUsage") from exc
    if not eku.critical or list(eku.value) != [ExtendedKeyUsageOID.TIME_STAMPING]:
        raise TsaConfigurationError(
            "the TSA certificate's extendedKeyUsage must be id-kp-timeStamping alone, critical"
        )
