"""Private: pyHanko timestampers for dangan's own TSA (in process) and external ones (HTTP).

:class:`InProcessTimeStamper` hands the DER TimeStampReq straight to
:meth:`TimestampAuthority.respond`, with no HTTP in between, and checks the answer the
way an RFC 3161 §2.4.2 client must: status granted, a token present, the nonce and the
message imprint echoed.
"""

from __future__ import annotations

from typing import ClassVar

import aiohttp
from asn1crypto import cms, core, tsp
from pyhanko.sign.timestamps import HTTPTimeStamper, TimeStamper, TimestampRequestError

from dangan.signing.tsa import TimestampAuthority

__all__ = ["InProcessTimeStamper", "http_timestamper"]

#: PKIStatus values that carry a token (RFC 3161 §2.4.2).
_GRANTED = {"granted", "granted_with_mods"}


class _TimeStampResp(core.Sequence):
    # RFC 3161 §2.4.2: timeStampToken is OPTIONAL and absent when the request is
    # refused; asn1crypto's tsp.TimeStampResp makes it mandatory.
    _fields: ClassVar[list[tuple]] = [
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


class InProcessTimeStamper(TimeStamper):
    """Gets RFC 3161 timestamp tokens from a :class:`TimestampAuthority` in this process.

    Keep one per authority and reuse it: pyHanko caches the first token it gets (to size
    signature placeholders and to find the TSA's certificates for B-LT) per instance.
    """

    def __init__(self, authority: TimestampAuthority) -> None:
        super().__init__(include_nonce=True)
        self.authority = authority

    async def async_timestamp(self, message_digest: bytes, md_algorithm: str) -> cms.ContentInfo:
        """The token over ``message_digest``; TimestampRequestError if refused or wrong."""
        nonce, request = self.request_cms(message_digest, md_algorithm)
        response = _parse_response(self.authority.respond(request.dump()))
        status = response["status"]
        if status["status"].native not in _GRANTED:
            raise TimestampRequestError(_refusal(status))
        token = response["time_stamp_token"]
        if isinstance(token, core.Void):
            raise TimestampRequestError("the TSA granted the request but sent no token")
        _check_token(token, request, nonce)
        return token


def http_timestamper(
    url: str,
    *,
    timeout: float = 5.0,
    auth: tuple[str, str] | None = None,
    https_only: bool = False,
) -> HTTPTimeStamper:
    """A pyHanko client of an external RFC 3161 TSA over HTTP (RFC 3161 §3.4).

    With ``https_only``, a URL that is not ``https:`` is refused (ValueError).
    """
    return HTTPTimeStamper(
        url,
        https=https_only,
        timeout=timeout,
        auth=aiohttp.BasicAuth(*auth) if auth is not None else None,
    )


def _parse_response(der: bytes) -> _TimeStampResp:
    try:
        response = _TimeStampResp.load(der, strict=True)
        _ = response["status"].native
    except (ValueError, TypeError) as exc:
        raise TimestampRequestError("the TSA answered with something other than DER") from exc
    return response


def _refusal(status: tsp.PKIStatusInfo) -> str:
    texts = "; ".join(status["status_string"].native or [])
    fail_info = ", ".join(sorted(status["fail_info"].native or []))
    return f"the TSA refused the request ({status['status'].native}: {fail_info}) {texts}".strip()


def _check_token(token: cms.ContentInfo, request: tsp.TimeStampReq, nonce: int | None) -> None:
    """RFC 3161 §2.4.2: the nonce and the message imprint must come back unchanged."""
    try:
        tst_info = token["content"]["encap_content_info"]["content"].parsed
        imprint, echoed_nonce = tst_info["message_imprint"], tst_info["nonce"].native
    except (ValueError, TypeError, KeyError) as exc:
        raise TimestampRequestError("the TSA sent a token without a readable TSTInfo") from exc
    if nonce is not None and echoed_nonce != nonce:
        raise TimestampRequestError("the TSA sent back another nonce")
    wanted = request["message_imprint"]
    # Compared by value: NULL or absent parameters name the same algorithm (RFC 5754 §2).
    if (
        imprint["hashed_message"].native != wanted["hashed_message"].native
        or imprint["hash_algorithm"]["algorithm"].native
        != wanted["hash_algorithm"]["algorithm"].native
    ):
        raise TimestampRequestError("the TSA timestamped another message imprint")
