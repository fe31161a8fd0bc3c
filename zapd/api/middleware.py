"""The HTTP edge's middleware: request ids, access log, metrics and the body size limit.

`install_middleware` puts `RequestContextMiddleware` *outside* Starlette's
ServerErrorMiddleware, so even a 500 answered by the catch-all handler carries the
`X-Request-ID` header and is counted and logged. `BodyLimitMiddleware` sits inside
it and refuses bodies over `max_body_bytes` with 413, whether the size is announced
by Content-Length or only discovered while a chunked body streams in; the 413 is sent
whole, then the rest of the body is read and discarded before the connection closes
(zapd.api.drain), so a client still uploading hears the 413 instead of a reset. Media uploads
(`/api/v1/media`) get their own, larger ceiling (`max_media_bytes` when the settings
have it, else 100 MiB); the media route still checks its own per-type limits.

The access log never records headers (Authorization stays out), query strings
(tokens may travel there) or bodies.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid

from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import ErrorCode
from zapd.api.drain import DRAIN_MAX_BYTES, drain_request_body
from zapd.api.errors import error_body
from zapd.api.json_guard import JsonDepthMiddleware
from zapd.config import ZapdSettings
from zapd.logging import REQUEST_ID
from zapd.prometheus import UNMATCHED_ROUTE

access_log = logging.getLogger("zapd.access")

REQUEST_ID_HEADER = "x-request-id"
MEDIA_PATH = "/api/v1/media"  # uploads: bodies are files, not JSON
MULTIPART_SLACK = 64 * 1024

DEFAULT_MEDIA_BYTES = 100 << 20  # WhatsApp's own ceiling (documents); a setting may lower it
# An incoming id is honoured only when it is short and plain (no log or header injection).
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+=/-]{0,127}")


def request_id_of(scope: Scope) -> str:
    """Return the request's incoming X-Request-ID if acceptable, else a new one."""
    incoming = Headers(scope=scope).get(REQUEST_ID_HEADER)
    if incoming is not None and _REQUEST_ID_RE.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    """Return the path template of the route that handled the request (bounded labels)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED_ROUTE


class RequestContextMiddleware:
    """Give each request an id, echo it back, log the request and count it."""

    def __init__(self, app: ASGIApp, owner: FastAPI) -> None:
        self.app = app
        self.owner = owner  # its state.daemon (opened by the lifespan) holds the metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = request_id_of(scope)
        scope.setdefault("state", {})["request_id"] = rid
        token = REQUEST_ID.set(rid)
        try:
            if scope["type"] == "websocket":
                await self._websocket(scope, receive, send, rid)
            else:
                await self._http(scope, receive, send, rid)
        finally:
            REQUEST_ID.reset(token)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send, rid: str) -> None:
        # One access line per connection, when it ends: 101 if it was accepted, the
        # denial's status if refused (403 when closed before accepting).
        started = time.perf_counter()
        status: int | None = None

        async def send_tracking(message: Message) -> None:
            nonlocal status
            kind = message["type"]
            if kind in ("websocket.accept", "websocket.http.response.start"):
                message.setdefault("headers", [])
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = rid
            if status is None:
                if kind == "websocket.accept":
                    status = 101
                elif kind == "websocket.http.response.start":
                    status = int(message["status"])
                elif kind == "websocket.close":
                    status = 403
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        finally:
            seconds = time.perf_counter() - started
            self._log("WS", scope, route_template(scope), status or 500, seconds, rid)

    async def _http(self, scope: Scope, receive: Receive, send: Send, rid: str) -> None:
        started = time.perf_counter()
        status: int | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except asyncio.CancelledError:  # shutdown gave up on it before it answered
            status = status or 499
            raise
        except Exception:
            if status is None:
                status = 500
                raise
            # Already answered (ServerErrorMiddleware sent the 500 and logged the
            # traceback through the catch-all handler): nothing left to do.
        finally:
            self._record(scope, status or 500, time.perf_counter() - started, rid)

    def _record(self, scope: Scope, status: int, seconds: float, rid: str) -> None:
        method = str(scope.get("method", ""))
        route = route_template(scope)
        daemon = getattr(self.owner.state, "daemon", None)
        if daemon is not None:
            daemon.metrics.observe_request(method, route, status, seconds)
        self._log(method, scope, route, status, seconds, rid)

    @staticmethod
    def _log(method: str, scope: Scope, route: str, status: int, seconds: float, rid: str) -> None:
        path = str(scope.get("path", ""))
        client = scope.get("client")
        ms = round(seconds * 1000, 1)
        access_log.info(
            "%s %s %d %.1fms",
            method,
            path,
            status,
            ms,
            extra={
                "request_id": rid,
                "method": method,
                "path": path,
                "route": route,
                "status": status,
                "duration_ms": ms,
                "client": client[0] if client else None,
            },
        )


class PayloadTooLarge(HTTPException):
    """The request body is over the limit (raised from `receive` while it streams in)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than the {limit}-byte limit")


class BodyLimitMiddleware:
    """Refuse request bodies over `max_bytes` with 413, announced or streamed.

    `limits_by_prefix` gives some paths their own limit (media uploads are not JSON and
    may be far bigger); the longest matching prefix wins.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, limits_by_prefix: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.by_prefix = sorted((limits_by_prefix or {}).items(), key=lambda kv: -len(kv[0]))

    def limit_for(self, path: str) -> int:
        """Return the body limit that applies to `path`."""
        for prefix, limit in self.by_prefix:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if b"%00" in scope.get("query_string", b"") or "\x00" in str(scope.get("path", "")):
            # PostgreSQL cannot hold U+0000 in text: refuse it at the door (422), not
            # as a database error deep inside a search.
            await _send_error(
                send,
                422,
                ErrorCode.VALIDATION,
                HTTPException(422, "the URL must not contain NUL (%00) characters"),
            )
            return
        limit = self.limit_for(str(scope.get("path", "")))
        announced = _content_length(scope)

        if announced is not None and announced > limit:
            drain = receive if announced <= DRAIN_MAX_BYTES else None
            await _send_error(send, 413, ErrorCode.PAYLOAD_TOO_LARGE, PayloadTooLarge(limit), drain)
            return
        received = 0
        response_started = False
        exceeded = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise PayloadTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                if exceeded:  # FastAPI's handler answers the 413: close after it
                    message = {**message, "headers": [*message.get("headers", [])]}
                    message["headers"].append((b"connection", b"close"))
            elif exceeded and not message.get("more_body", False):
                # The 413 document is complete: let the client have it, read the rest of
                # its body, then end the response (see zapd.api.drain).
                await send({**message, "more_body": True})
                await drain_request_body(receive)
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except PayloadTooLarge as exc:  # read outside FastAPI's handlers (a raw route)
            if response_started:
                raise
            await _send_error(send, 413, ErrorCode.PAYLOAD_TOO_LARGE, exc, receive)


def _content_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


async def _send_error(
    send: Send, status: int, code: str, exc: HTTPException, drain: Receive | None = None
) -> None:
    """Answer an error and close; with `drain`, read the unread request body in between."""
    body = json.dumps(error_body(code, str(exc.detail))).encode()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    if drain is None:
        await send({"type": "http.response.body", "body": body})
        return
    await send({"type": "http.response.body", "body": body, "more_body": True})
    await drain_request_body(drain)
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def install_middleware(app: FastAPI, settings: ZapdSettings) -> None:
    """Add the body limit, and wrap the whole stack in the request-context middleware."""
    media_limit = int(getattr(settings, "max_media_bytes", DEFAULT_MEDIA_BYTES))
    # Added first, so it runs inside the body limit: it buffers bodies already bounded.
    app.add_middleware(
        JsonDepthMiddleware, max_depth=settings.max_json_depth, skip_prefixes=(MEDIA_PATH,)
    )
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        # The file may be max_media_bytes itself; the multipart framing around it
        # (boundaries, part headers) is allowed on top. The media route checks the file.
        limits_by_prefix={MEDIA_PATH: max(media_limit + MULTIPART_SLACK, settings.max_body_bytes)},
    )
    build_inner = app.build_middleware_stack

    def build_outer() -> ASGIApp:
        return RequestContextMiddleware(build_inner(), app)

    # Starlette builds the stack on first call; wrapping the builder puts our middleware
    # outside ServerErrorMiddleware, which `add_middleware` cannot do.
    app.build_middleware_stack = build_outer  # type: ignore[method-assign]
