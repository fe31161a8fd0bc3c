"""Typed errors of the zapd client: one class per kind of failure a caller handles.

Invariants:
- Every failure the client raises is a `ZapError` carrying the HTTP status (0 when no
  answer came), the error code and the daemon's message. `code` is an `ErrorCode` member
  whenever the daemon sent a code this version knows, else the raw string (a newer
  daemon's code, or `ERR_HTTP_<status>` for an answer that is not zapd's error document).
- The class is chosen by error code first (`_BY_CODE`), then by status (`_BY_STATUS`), so
  a caller can `except PayloadTooLarge:` whatever status a proxy turned it into.
- This module imports no HTTP or validation library: reading an error costs nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from shared.errors import ErrorCode, http_status_code

_KNOWN = frozenset(ErrorCode)


def as_code(code: str) -> str:
    """Return `code` as its `ErrorCode` member when known (a member *is* its string)."""
    return ErrorCode(code) if code in _KNOWN else code


class ZapError(Exception):
    """Base of every error the client raises: HTTP status, error code, message."""

    default_status = 0
    default_code: str = ErrorCode.UNKNOWN

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = self.default_status if status is None else status
        self.code = as_code(code or self.default_code)
        self.details = details

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(status={self.status}, code={str(self.code)!r}, {self.message!r})"


class BadRequest(ZapError):
    """400: the request makes no sense as given."""

    default_status = 400
    default_code = ErrorCode.BAD_REQUEST


class Unauthorized(ZapError):
    """401: no valid credentials (log in again)."""

    default_status = 401
    default_code = ErrorCode.UNAUTHORIZED


class Forbidden(ZapError):
    """403: the caller's role does not allow this."""

    default_status = 403
    default_code = ErrorCode.FORBIDDEN


class NotFound(ZapError):
    """404: no such thing (or it belongs to another company)."""

    default_status = 404
    default_code = ErrorCode.NOT_FOUND


class Conflict(ZapError):
    """409: the change collides with existing data."""

    default_status = 409
    default_code = ErrorCode.CONFLICT


class PayloadTooLarge(ZapError):
    """413: the body (an upload, usually) is over the daemon's limit; nothing was stored."""

    default_status = 413
    default_code = ErrorCode.PAYLOAD_TOO_LARGE


class ValidationError(ZapError):
    """422: a value is not acceptable; `details` lists the offending fields when known."""

    default_status = 422
    default_code = ErrorCode.VALIDATION


class RateLimited(ZapError):
    """429: too many attempts; `retry_after` is in seconds (None when not given)."""

    default_status = 429
    default_code = ErrorCode.RATE_LIMITED

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(ZapError):
    """5xx: the daemon failed (its log has the details)."""

    default_status = 500
    default_code = ErrorCode.INTERNAL


class Unavailable(ServerError):
    """503: a dependency of the daemon (database, engine) is not there right now."""

    default_status = 503
    default_code = ErrorCode.UNAVAILABLE


class DaemonUnreachable(ZapError):
    """The connection to zapd failed: nothing listens there, or it went away."""

    default_code = ErrorCode.UNREACHABLE

    def __init__(self, base_url: str) -> None:
        super().__init__(f"cannot reach zapd at {base_url} — is it running?")
        self.base_url = base_url


class RequestTimeout(ZapError):
    """zapd accepted the connection but did not answer in time."""

    default_code = ErrorCode.TIMEOUT


class BadResponse(ZapError):
    """zapd answered something this client cannot read (a version mismatch, usually)."""

    default_code = ErrorCode.BAD_RESPONSE


class StreamClosed(ZapError):
    """zapd closed the event stream with a code after which resuming makes no sense."""

    default_code = ErrorCode.WS_CLOSED


_BY_CODE: dict[str, type[ZapError]] = {
    ErrorCode.PAYLOAD_TOO_LARGE: PayloadTooLarge,
    ErrorCode.DATABASE_UNAVAILABLE: Unavailable,
}
_BY_STATUS: dict[int, type[ZapError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: ValidationError,
    429: RateLimited,
    503: Unavailable,
}


def parse_retry_after(value: str | None) -> float | None:
    """Read a Retry-After header: delta-seconds or an HTTP date (None when absent or bad)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime  # rare: an HTTP date, not seconds

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _document(body: bytes | None) -> dict[str, Any]:
    try:
        doc = json.loads(body or b"")
    except (ValueError, UnicodeDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}


def error_from(status: int, body: bytes | None, headers: Mapping[str, str]) -> ZapError:
    """Build the typed error for an HTTP failure (the body may be JSON or anything else)."""
    doc = _document(body)
    code = doc.get("error") if isinstance(doc.get("error"), str) else None
    message = doc.get("message") if isinstance(doc.get("message"), str) else None
    raw_details = doc.get("details")
    details = (
        [d for d in raw_details if isinstance(d, dict)] if isinstance(raw_details, list) else None
    )
    if code is None:  # not zapd's error document (a proxy, a crash page...)
        code = http_status_code(status)
    if message is None:
        text = (body or b"").decode("utf-8", "replace").strip()
        message = f"HTTP {status}: {text[:200]}" if text else f"HTTP {status}"
    cls = (
        _BY_CODE.get(code) or _BY_STATUS.get(status) or (ServerError if status >= 500 else ZapError)
    )
    kw: dict[str, Any] = {"status": status, "code": code, "details": details}
    if cls is RateLimited:
        return RateLimited(message, retry_after=parse_retry_after(headers.get("retry-after")), **kw)
    return cls(message, **kw)


__all__ = [
    "BadRequest",
    "BadResponse",
    "Conflict",
    "DaemonUnreachable",
    "Forbidden",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "RequestTimeout",
    "ServerError",
    "StreamClosed",
    "Unauthorized",
    "Unavailable",
    "ValidationError",
    "ZapError",
    "as_code",
    "error_from",
    "parse_retry_after",
]
