"""Wire constants that zapd, zapctl and zaptui must agree on: error codes and close codes.

Invariants:
- An error response body is `{"error": <ErrorCode value>, "message": <human text>}`. The
  server raises these members and clients compare against them; no other module spells an
  `"ERR_*"` string.
- A code, once released, keeps its spelling forever (scripts match on it). Add new members;
  never rename one. `ErrorCode` is a `StrEnum`, so a member *is* its wire string.
- WebSocket close codes in the 4000-4999 range are ours; `RECONNECT_CLOSE_CODES` is the set
  after which a client resumes with `since=<last seq>` instead of giving up.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ErrorCode(StrEnum):
    """Every error code a zap program sends or reports."""

    # generic HTTP-level answers
    BAD_REQUEST = "ERR_BAD_REQUEST"
    VALIDATION = "ERR_VALIDATION"
    UNAUTHORIZED = "ERR_UNAUTHORIZED"
    FORBIDDEN = "ERR_FORBIDDEN"
    NOT_FOUND = "ERR_NOT_FOUND"
    CONFLICT = "ERR_CONFLICT"
    METHOD_NOT_ALLOWED = "ERR_METHOD_NOT_ALLOWED"
    NOT_ACCEPTABLE = "ERR_NOT_ACCEPTABLE"
    PAYLOAD_TOO_LARGE = "ERR_PAYLOAD_TOO_LARGE"
    UNSUPPORTED_MEDIA_TYPE = "ERR_UNSUPPORTED_MEDIA_TYPE"
    RATE_LIMITED = "ERR_RATE_LIMITED"
    INTERNAL = "ERR_INTERNAL"
    UNAVAILABLE = "ERR_UNAVAILABLE"
    DATABASE_UNAVAILABLE = "ERR_DATABASE_UNAVAILABLE"
    BAD_CURSOR = "ERR_BAD_CURSOR"
    AMBIGUOUS = "ERR_AMBIGUOUS"
    # authentication
    BAD_CREDENTIALS = "ERR_BAD_CREDENTIALS"
    ACCOUNT_DISABLED = "ERR_ACCOUNT_DISABLED"
    ACCOUNT_LOCKED = "ERR_ACCOUNT_LOCKED"
    BAD_REFRESH_TOKEN = "ERR_BAD_REFRESH_TOKEN"
    NO_REFRESH_TOKEN = "ERR_NO_REFRESH_TOKEN"
    REFRESH_REUSED = "ERR_REFRESH_REUSED"
    TOKEN_EXPIRED = "ERR_TOKEN_EXPIRED"
    TOKEN_REVOKED = "ERR_TOKEN_REVOKED"
    WEAK_PASSWORD = "ERR_WEAK_PASSWORD"
    # companies and people
    COMPANY_REQUIRED = "ERR_COMPANY_REQUIRED"
    COMPANY_NOT_EMPTY = "ERR_COMPANY_NOT_EMPTY"
    CNPJ_TAKEN = "ERR_CNPJ_TAKEN"
    INVALID_CNPJ = "ERR_INVALID_CNPJ"
    EMAIL_TAKEN = "ERR_EMAIL_TAKEN"
    LAST_ADMIN = "ERR_LAST_ADMIN"
    SELF_LOCKOUT = "ERR_SELF_LOCKOUT"
    AT_CAPACITY = "ERR_AT_CAPACITY"
    CLIENT_ERASED = "ERR_CLIENT_ERASED"
    # sessions and engines
    ENGINE_UNAVAILABLE = "ERR_ENGINE_UNAVAILABLE"
    NOT_SANDBOX = "ERR_NOT_SANDBOX"
    NO_QR = "ERR_NO_QR"
    PAIRING_REFUSED = "ERR_PAIRING_REFUSED"
    PAIRING_UNSUPPORTED = "ERR_PAIRING_UNSUPPORTED"
    SESSION_HAS_HISTORY = "ERR_SESSION_HAS_HISTORY"
    SESSION_INACTIVE = "ERR_SESSION_INACTIVE"
    SESSION_NOT_CONNECTED = "ERR_SESSION_NOT_CONNECTED"
    SESSION_NOT_RUNNING = "ERR_SESSION_NOT_RUNNING"
    SESSION_STARTED = "ERR_SESSION_STARTED"
    WINDOW_CLOSED = "ERR_WINDOW_CLOSED"
    NOT_CLOUD = "ERR_NOT_CLOUD"
    # tickets and messages
    INVALID_TRANSITION = "ERR_INVALID_TRANSITION"
    OPEN_TICKET_EXISTS = "ERR_OPEN_TICKET_EXISTS"
    TICKET_CLOSED = "ERR_TICKET_CLOSED"
    TICKET_NOT_CLOSED = "ERR_TICKET_NOT_CLOSED"
    TICKET_NO_CHAT = "ERR_TICKET_NO_CHAT"
    TICKET_TAKEN = "ERR_TICKET_TAKEN"
    TRANSFER_NOOP = "ERR_TRANSFER_NOOP"
    UNKNOWN_QUICK_REPLY = "ERR_UNKNOWN_QUICK_REPLY"
    IDEMPOTENCY_KEY_REUSED = "ERR_IDEMPOTENCY_KEY_REUSED"
    IDEMPOTENCY_MISMATCH = "ERR_IDEMPOTENCY_MISMATCH"
    OUTBOX_STATE = "ERR_OUTBOX_STATE"
    # reported by clients, never sent by zapd
    UNKNOWN = "ERR_UNKNOWN"
    UNREACHABLE = "ERR_UNREACHABLE"
    TIMEOUT = "ERR_TIMEOUT"
    BAD_RESPONSE = "ERR_BAD_RESPONSE"
    BAD_FRAME = "ERR_BAD_FRAME"
    WS_CLOSED = "ERR_WS_CLOSED"
    USAGE = "ERR_USAGE"


class CloseCode(IntEnum):
    """WebSocket close codes zapd sends on `/api/v1/ws`."""

    NORMAL = 1000
    GOING_AWAY = 1001  # daemon shutting down: reconnect
    POLICY_VIOLATION = 1008  # handshake refused or too many bad frames
    INTERNAL_ERROR = 1011  # database trouble: reconnect
    TRY_AGAIN_LATER = 1013
    UNAUTHORIZED = 4001  # token revoked, user disabled or password changed: log in again
    SLOW_CONSUMER = 4008  # fell too far behind: reconnect with since=<last seq>


# Close codes after which the stream resumes (server restart, overload, slow consumer,
# plain network loss); UNAUTHORIZED means the credentials died; anything else is final.
RECONNECT_CLOSE_CODES: frozenset[int] = frozenset(
    {1000, 1001, 1006, 1011, 1012, 1013, 1014, int(CloseCode.SLOW_CONSUMER)}
)


def http_status_code(status: int) -> str:
    """Return the code a client reports for an HTTP failure without zapd's error document."""
    return f"ERR_HTTP_{status}"
