"""Structured logs: one JSON object per line on stdout, or readable text on a terminal.

`setup_logging` configures the root logger once at start (zapd/main.py). Every record
carries the request id of the request being served (set by the access-log middleware
through `REQUEST_ID`), so a line can always be traced back to the request behind it.
Fields given with `extra={...}` become top-level JSON keys (text: `key=value` pairs).

Redaction: `RedactFilter` sits on every root handler, so it sees every record of every
logger (uvicorn's own included) at every level, before any formatter: credentials in
query strings (`?token=`, `access_token=`, `password=`...), `Bearer ...` values, JWTs and
zap's API/refresh tokens (`zap_...`, `zrt_...`) are replaced with `***` in the message,
its arguments, string extras and exception text.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any, Literal

REQUEST_ID: ContextVar[str | None] = ContextVar("zap_request_id", default=None)

LogFormat = Literal["auto", "json", "text"]

# Attributes every LogRecord has; anything else on a record came in through `extra`.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName"}
)
# Extras that only repeat the message (uvicorn adds a colored copy of its own).
_DROPPED_EXTRAS = frozenset({"color_message"})
_MARK = "_zap_handler"
_QUIET_LIBRARIES = {
    "aiosqlite": logging.INFO,  # DEBUG: every statement with its parameters
    "asyncpg": logging.INFO,
    "websockets": logging.INFO,  # DEBUG: every frame's payload
    "httpx": logging.WARNING,  # INFO: every outbound URL (webhook secrets, tokens)
    "httpcore": logging.WARNING,
    "hpack": logging.WARNING,
}


def record_extras(record: logging.LogRecord) -> dict[str, Any]:
    """Return the fields a record was given through `extra=`."""
    return {
        k: v
        for k, v in vars(record).items()
        if k not in _STANDARD_ATTRS and k not in _DROPPED_EXTRAS and not k.startswith("_")
    }


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


MASK = "***"
_SECRET_PARAMS = (
    "token|access_token|refresh_token|id_token|api_key|apikey|secret|client_secret|password"
    "|passwd|signature|sig|hub\\.verify_token|verify_token|code"
)
_REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    # name=value in a query string or a form: keep the name, mask the value
    (re.compile(rf"(?i)(?<![A-Za-z0-9_])({_SECRET_PARAMS})=[^&\s\"'#;,)]+"), rf"\1={MASK}"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{4,}"), rf"\1 {MASK}"),
    # JSON Web Tokens (header.payload.signature, base64url)
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), MASK),
    # zap's API tokens and refresh tokens
    (re.compile(r"\b(zap|zrt)_[A-Za-z0-9_-]{16,}"), rf"\1_{MASK}"),
)


def redact(text: str) -> str:
    """Mask credentials in a text (query-string secrets, bearer values, tokens)."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class RedactFilter(logging.Filter):
    """Mask credentials in every record that reaches the handler; never drop a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message, string extras and exception text, redacted."""
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the formatter to report
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        for key, value in record_extras(record).items():
            if isinstance(value, str):
                setattr(record, key, redact(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class RequestIdFilter(logging.Filter):
    """Stamp each record with the id of the request being served, if any."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add `request_id` unless the record already has one; never drop a record."""
        if getattr(record, "request_id", None) is None:
            rid = REQUEST_ID.get()
            if rid is not None:
                record.request_id = rid
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, then the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as a single JSON line."""
        doc: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record_extras(record).items():
            doc.setdefault(key, value)
        if record.exc_info:
            doc["exc"] = record.exc_text or self.formatException(record.exc_info)
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return json.dumps(doc, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Human-readable lines for a terminal: `ts LEVEL logger: msg key=value ...`."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as text, extras appended as key=value."""
        ts = datetime.fromtimestamp(record.created).astimezone().strftime("%H:%M:%S.%f")[:-3]
        line = f"{ts} {record.levelname:<7} {record.name}: {record.getMessage()}"
        extras = record_extras(record)
        if extras:
            line += " " + " ".join(f"{k}={_text_value(v)}" for k, v in extras.items())
        if record.exc_info:
            line += "\n" + (record.exc_text or self.formatException(record.exc_info))
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


def _text_value(value: Any) -> str:
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if (not text or " " in text) else text


def resolve_format(fmt: LogFormat, stream: IO[str]) -> Literal["json", "text"]:
    """Turn `auto` into `text` on a terminal and `json` everywhere else."""
    if fmt != "auto":
        return fmt
    try:
        return "text" if stream.isatty() else "json"
    except (AttributeError, ValueError):  # closed or fake streams
        return "json"


def make_handler(fmt: LogFormat = "auto", stream: IO[str] | None = None) -> logging.Handler:
    """Return a stream handler with the chosen formatter and the request-id filter."""
    out = stream if stream is not None else sys.stdout
    handler = logging.StreamHandler(out)
    resolved = resolve_format(fmt, out)
    handler.setFormatter(JsonFormatter() if resolved == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactFilter())
    setattr(handler, _MARK, True)
    return handler


def setup_logging(
    level: str = "info", fmt: LogFormat = "auto", stream: IO[str] | None = None
) -> logging.Handler:
    """Send every log record to stdout (or `stream`) in the chosen format; idempotent."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(old)
        old.close()
    handler = make_handler(fmt, stream)
    root.addHandler(handler)
    # Handlers someone else put on the root (a journal, a test's capture) redact too.
    for other in root.handlers:
        if not any(isinstance(f, RedactFilter) for f in other.filters):
            other.addFilter(RedactFilter())
    root.setLevel(level.upper())
    # uvicorn logs through its own loggers: let them reach ours, and keep our access
    # log (zapd.access) as the only one.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.asgi"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
        lg.setLevel(logging.NOTSET)  # zapd's level decides, whatever uvicorn set before
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # Libraries whose DEBUG/INFO lines carry SQL parameters, frames or full URLs (that
    # is: bodies, tokens, secrets) stay quiet even when zapd itself runs at debug.
    for name, floor in _QUIET_LIBRARIES.items():
        logging.getLogger(name).setLevel(floor)
    return handler
