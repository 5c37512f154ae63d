"""The error tree of dangan.

Every error the service can report derives from :class:`DanganError` and carries a
stable machine ``code``, a short ``title`` and the HTTP ``status`` it maps to. The API
turns each into an RFC 9457 ``application/problem+json`` body in one place.

    DanganError
    ├── InvalidRequest            400 invalid_request
    │   └── InvalidMetadata       422 invalid_metadata
    ├── Unauthenticated           401 unauthenticated
    ├── Forbidden                 403 forbidden
    ├── NotFound                  404 not_found
    ├── Conflict                  409 conflict
    │   ├── IdempotencyConflict   409 idempotency_conflict
    │   └── RetentionLocked       409 retention_locked
    ├── PayloadTooLarge           413 payload_too_large
    ├── UnsupportedMediaType      415 unsupported_media_type
    ├── RangeNotSatisfiable       416 range_not_satisfiable
    ├── IntegrityError            500 integrity_error
    └── BackendUnavailable        503 backend_unavailable
"""

from __future__ import annotations

from typing import Any


class DanganError(Exception):
    """Root of all dangan errors."""

    code: str = "error"
    title: str = "Internal error"
    status: int = 500

    def __init__(
        self, detail: str | None = None, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        #: HTTP headers the response must carry (e.g. ``Content-Range`` on a 416).
        self.headers = headers or {}
        #: Extra members for the problem details body (RFC 9457 §3.2).
        self.extra = extra


class InvalidRequest(DanganError):
    code = "invalid_request"
    title = "The request is malformed"
    status = 400


class InvalidMetadata(InvalidRequest):
    code = "invalid_metadata"
    title = "The document metadata is invalid"
    status = 422


class Unauthenticated(DanganError):
    code = "unauthenticated"
    title = "Missing or invalid API key"
    status = 401


class Forbidden(DanganError):
    code = "forbidden"
    title = "The API key lacks a required scope"
    status = 403


class NotFound(DanganError):
    code = "not_found"
    title = "No such resource"
    status = 404


class Conflict(DanganError):
    code = "conflict"
    title = "The request conflicts with the current state"
    status = 409


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"
    title = "The Idempotency-Key was already used for a different request"


class RetentionLocked(Conflict):
    code = "retention_locked"
    title = "The object is under retention or legal hold"


class PayloadTooLarge(DanganError):
    code = "payload_too_large"
    title = "The upload exceeds the size limit"
    status = 413


class UnsupportedMediaType(DanganError):
    code = "unsupported_media_type"
    title = "The content type is not accepted"
    status = 415


class RangeNotSatisfiable(DanganError):
    code = "range_not_satisfiable"
    title = "The requested range cannot be served"
    status = 416


class IntegrityError(DanganError):
    code = "integrity_error"
    title = "Stored data failed an integrity check"
    status = 500


class BackendUnavailable(DanganError):
    code = "backend_unavailable"
    title = "A storage or database backend is unavailable"
    status = 503
