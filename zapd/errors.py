"""Errors the services raise; the API edge maps each to a status code and error code.

Every code is a `shared.errors.ErrorCode` member (the wire's one list), never a literal.
"""

from __future__ import annotations

from typing import Any

from shared.errors import ErrorCode


class ZapError(Exception):
    """Base of every error a user may see; carries a stable code and a human message."""

    status_code = 400
    code: ErrorCode = ErrorCode.BAD_REQUEST

    def __init__(self, message: str, *, code: ErrorCode | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class BadRequest(ZapError):
    """The request makes no sense as given."""


class ValidationFailed(ZapError):
    """A value is not acceptable (bad CNPJ, bad phone, too long...)."""

    status_code = 422
    code = ErrorCode.VALIDATION


class Unauthorized(ZapError):
    """No valid credentials."""

    status_code = 401
    code = ErrorCode.UNAUTHORIZED


class Forbidden(ZapError):
    """Valid credentials, but the role does not allow this."""

    status_code = 403
    code = ErrorCode.FORBIDDEN


class NotFound(ZapError):
    """No such thing, or not in the caller's company (the two look the same)."""

    status_code = 404
    code = ErrorCode.NOT_FOUND


class Conflict(ZapError):
    """The change collides with existing data (duplicate CNPJ, e-mail, phone...)."""

    status_code = 409
    code = ErrorCode.CONFLICT


class RateLimited(ZapError):
    """Too many attempts; retry after `retry_after` seconds."""

    status_code = 429
    code = ErrorCode.RATE_LIMITED

    def __init__(self, message: str, *, retry_after: int, **details: Any) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after


class Unavailable(ZapError):
    """A dependency (database, engine) is not there right now."""

    status_code = 503
    code = ErrorCode.UNAVAILABLE


class DatabaseUnavailable(Unavailable):
    """The database cannot be reached right now (transient); retry after `retry_after` s."""

    code = ErrorCode.DATABASE_UNAVAILABLE

    def __init__(self, message: str, *, retry_after: int, **details: Any) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after


class PayloadTooLarge(ZapError):
    """A body or file is over its size limit."""

    status_code = 413
    code = ErrorCode.PAYLOAD_TOO_LARGE


class UnsupportedMediaType(ZapError):
    """A file's content is of a type zap does not accept."""

    status_code = 415
    code = ErrorCode.UNSUPPORTED_MEDIA_TYPE
