"""Map every error to the contract's `{"error", "message"}` shape; never leak a traceback."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.errors import ErrorCode
from zapd.db.integrity import Violation, classify
from zapd.errors import DatabaseUnavailable, RateLimited, ZapError
from zapd.kernel.transient import DatabaseHealth, is_transient

log = logging.getLogger("zapd.api")

_HTTP_CODES = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    406: ErrorCode.NOT_ACCEPTABLE,
    409: ErrorCode.CONFLICT,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    422: ErrorCode.VALIDATION,
    429: ErrorCode.RATE_LIMITED,
    503: ErrorCode.UNAVAILABLE,
}


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """Build the contract's error document."""
    return {"error": code, "message": message, **extra}


# pydantic prefixes what a validator raised; the validator's own text is the message.
_PYDANTIC_PREFIXES = ("Value error, ", "Assertion failed, ")


def _message(msg: Any) -> str:
    text = str(msg) if msg is not None else "invalid"
    for prefix in _PYDANTIC_PREFIXES:
        text = text.removeprefix(prefix)
    return text


def _describe(errors: list[Any]) -> str:
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{loc or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


_NOUNS = {
    "companies": "company",
    "users": "user",
    "departments": "department",
    "categories": "category",
    "tags": "tag",
    "clients": "client",
    "client_identities": "client",
    "sessions": "session",
    "quick_replies": "quick reply",
    "chats": "chat",
    "tickets": "ticket",
    "api_tokens": "API token",
}
_SPECIFIC: dict[tuple[str, tuple[str, ...]], tuple[str, str]] = {
    ("companies", ("cnpj",)): (ErrorCode.CNPJ_TAKEN, "a company with this CNPJ already exists"),
    ("users", ("email",)): (ErrorCode.EMAIL_TAKEN, "a user with this e-mail already exists"),
}


def conflict_of(v: Violation) -> tuple[str, str]:
    """Return the error code and message for a constraint violation."""
    if v.kind == "foreign_key":
        return (
            ErrorCode.CONFLICT,
            "something this change refers to was changed or removed meanwhile; reload and retry",
        )
    specific = _SPECIFIC.get((v.table or "", v.columns))
    if specific is not None:
        return specific
    noun = _NOUNS.get(v.table or "", "record")
    fields = [c for c in v.columns if c != "company_id"]
    what = f" with this {' and '.join(fields).replace('_', ' ')}" if fields else ""
    return ErrorCode.CONFLICT, f"a {noun}{what} already exists (created at the same time?)"


def install_error_handlers(app: FastAPI) -> None:
    """Register handlers so every failure answers in the contract's shape."""

    @app.exception_handler(ZapError)
    async def _zap_error(_: Request, exc: ZapError) -> JSONResponse:
        retry_after = (
            exc.retry_after if isinstance(exc, RateLimited | DatabaseUnavailable) else None
        )
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return JSONResponse(
            error_body(exc.code, exc.message), status_code=exc.status_code, headers=headers
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"ERR_HTTP_{exc.status_code}")
        message = exc.detail if isinstance(exc.detail, str) else code
        return JSONResponse(
            error_body(code, message),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": _message(e.get("msg")), "type": e.get("type")}
            for e in exc.errors()
        ]
        return JSONResponse(
            error_body(ErrorCode.VALIDATION, _describe(errors), details=errors), status_code=422
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        # One mechanism for every route: a uniqueness race (two requests passed the
        # "is it free?" check at once) or a row deleted under a write answers 409.
        violation = classify(exc)
        if violation is None:
            return await _unexpected(request, exc)
        code, message = conflict_of(violation)
        log.info("%s %s: %s (%s)", request.method, request.url.path, message, violation)
        return JSONResponse(error_body(code, message), status_code=409)

    @app.exception_handler(DBAPIError)
    async def _database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        # Most database work goes through Kernel.tx()/read(), which already turn a
        # transient failure into DatabaseUnavailable; this catches the rest the same way.
        if not is_transient(exc):
            return await _unexpected(request, exc)
        daemon = getattr(request.app.state, "daemon", None)
        health = daemon.kernel.db_health if daemon is not None else DatabaseHealth()
        err = health.unavailable(exc)
        return JSONResponse(
            error_body(err.code, err.message),
            status_code=err.status_code,
            headers={"Retry-After": str(err.retry_after)},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            error_body(ErrorCode.INTERNAL, "internal error; the daemon log has the details"),
            status_code=500,
        )
