"""WS /api/v1/ws: the realtime feed (replay after `?since=`, then live) and typing.

Handshake: the token comes in `Authorization: Bearer ...` or, for clients that cannot
set headers, in `?token=`. A missing or bad token, or a bad `since`, is answered with
an HTTP error in the contract's JSON shape and the connection is never upgraded.

Server → client: `{"seq": N, "type": "...", "company_id": "...", "data": {...}}`
(`seq` is null for typing: `data` is `{ticket_id, name, typing}` plus `user_id` for an
agent or `customer: true` (and `recording: true` for a voice note) for the customer,
whose typing only the WhatsApp Web engine can see), `{"type": "pong"}`, and
`{"type": "error", "error": "ERR_...", "message": "..."}`.
Client → server: `{"type": "ping"}` and
`{"type": "typing", "ticket_id": "...", "typing": true}`.

Close codes: 1001 server shutting down, 1008 too many bad frames, 1013 try again
(database trouble), 4001 credentials no longer valid, 4008 too slow (resume with
`since=<last seq>`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, WebSocket
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect, WebSocketDisconnected

from shared.errors import CloseCode, ErrorCode
from shared.protocol.events import TYPING, TypingIn
from zapd.api.deps import bearer_of
from zapd.api.errors import error_body
from zapd.daemon import Daemon
from zapd.db.models import Ticket
from zapd.errors import Unauthorized, Unavailable, ZapError
from zapd.kernel.principal import Principal
from zapd.kernel.visibility import can_see_ticket
from zapd.realtime.hub import HubItem, Subscriber
from zapd.realtime.stream import EventFeed, parse_since
from zapd.services.people import auth

router = APIRouter(tags=["ws"])
log = logging.getLogger("zapd.realtime")

MAX_FRAME_CHARS = 4096  # client frames are tiny; anything bigger is a bad frame
MAX_BAD_FRAMES = 20  # then the connection closes with 1008
TYPING_RATE = 5.0  # typing frames per second (token bucket)
TYPING_BURST = 10.0


class _DenialIsNotAnError(logging.Filter):
    """Drop uvicorn's spurious error after a denial response (websockets-sansio).

    uvicorn's websockets-sansio protocol never marks the handshake complete after a
    `websocket.http.response` denial, so each refused token logs "ASGI callable returned
    without completing handshake." at ERROR (upstream: Kludex/uvicorn pull 3138). This
    handler always accepts, denies or closes, so that message never means anything here.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record but that one."""
        return record.getMessage() != "ASGI callable returned without completing handshake."


_uvicorn_log = logging.getLogger("uvicorn.error")
if not any(isinstance(f, _DenialIsNotAnError) for f in _uvicorn_log.filters):
    _uvicorn_log.addFilter(_DenialIsNotAnError())


def _token(websocket: WebSocket) -> str:
    header = websocket.headers.get("authorization")
    if header is not None:
        return bearer_of(header)
    values = websocket.query_params.getlist("token")
    if len(values) == 1 and values[0].strip():
        return values[0].strip()
    raise Unauthorized("missing token: send Authorization: Bearer <token> or ?token=")


def _redact_token(websocket: WebSocket) -> None:
    # The server logs the handshake's path and query: keep a `?token=` out of the logs.
    qs = websocket.scope.get("query_string", b"")
    if b"token=" in qs:
        pairs = parse_qsl(qs.decode("latin-1"), keep_blank_values=True)
        websocket.scope["query_string"] = urlencode(
            [(k, "REDACTED" if k == "token" else v) for k, v in pairs]
        ).encode("latin-1")


async def _deny(websocket: WebSocket, status: int, code: str, message: str) -> None:
    """Refuse the upgrade with an HTTP error in the contract's shape."""
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    response = JSONResponse(error_body(code, message), status_code=status, headers=headers)
    try:
        await websocket.send_denial_response(response)
    except RuntimeError:
        # No websocket.http.response extension: close before accept (the server
        # answers the handshake with 403); the code tells what happened.
        await websocket.close(
            code=CloseCode.UNAUTHORIZED if status == 401 else CloseCode.POLICY_VIOLATION
        )


@router.websocket("/api/v1/ws")
async def events_socket(websocket: WebSocket) -> None:
    """Stream the caller's events: everything visible after `since`, then live."""
    daemon: Daemon = websocket.app.state.daemon
    try:
        token = _token(websocket)
    except ZapError as exc:
        await _deny(websocket, exc.status_code, exc.code, exc.message)
        return
    finally:
        _redact_token(websocket)
    try:
        if not daemon.hub.accepting:
            raise Unavailable("the server is shutting down")
        principal = await auth.resolve(daemon.kernel, token)

        since_values = websocket.query_params.getlist("since")
        if len(since_values) > 1:
            raise ValueError("give since once")
        since = parse_since(since_values[0] if since_values else None, principal)
        feed = await EventFeed.open(daemon.hub, principal, since)
    except ZapError as exc:
        await _deny(websocket, exc.status_code, exc.code, exc.message)
        return
    except ValueError as exc:
        await _deny(websocket, 422, ErrorCode.VALIDATION, str(exc))
        return
    except Exception:
        log.exception("websocket handshake failed")
        await _deny(websocket, 503, ErrorCode.UNAVAILABLE, "try again later")
        return
    await _Connection(websocket, daemon, principal, feed).serve()


class _Connection:
    """One accepted socket: a writer (the feed), a reader (client frames), a closer."""

    def __init__(
        self, websocket: WebSocket, daemon: Daemon, principal: Principal, feed: EventFeed
    ) -> None:
        self.ws = websocket
        self.daemon = daemon
        self.kernel = daemon.kernel
        self.principal = principal
        self.feed = feed
        self.sub: Subscriber = feed.sub
        self.bad_frames = 0
        self._send_lock = asyncio.Lock()
        self._typing_tokens = TYPING_BURST
        self._typing_at = time.monotonic()

    async def send_text(self, text: str) -> None:
        """Send one frame (the writer and the reader's replies never interleave)."""
        async with self._send_lock:
            await self.ws.send_text(text)

    async def send_json(self, doc: dict[str, Any]) -> None:
        """Send one JSON frame."""
        await self.send_text(json.dumps(doc, separators=(",", ":"), ensure_ascii=False))

    async def serve(self) -> None:
        """Run until the client leaves or the hub asks the connection to close."""
        tasks: set[asyncio.Task[Any]] = set()
        try:
            await self.ws.accept()
            writer = asyncio.create_task(self.feed.run(self.send_text))
            reader = asyncio.create_task(self._read_loop())
            closer = asyncio.create_task(self.sub.closing.wait())
            tasks = {writer, reader, closer}
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            close: tuple[int, str] | None = None
            if closer in done or self.sub.closing.is_set():
                close = (self.sub.close_code, self.sub.close_reason)
            else:
                task = reader if reader in done else writer
                exc = task.exception()
                if exc is None:
                    close = reader.result() if task is reader else None
                elif not _is_disconnect(exc):
                    self.kernel.db_health.report(exc, log, "realtime connection failed")
                    close = (
                        CloseCode.TRY_AGAIN_LATER,
                        "try again: reconnect with since=<last seq>",
                    )
            await _cancel(tasks)
            if close is not None:
                await self._close(*close)
        except (WebSocketDisconnect, OSError):
            pass
        finally:
            await _cancel(tasks)
            self.feed.close()

    async def _close(self, code: int, reason: str) -> None:
        # A client that does not read blocks sends until it drains its socket; the close
        # frame then follows what was already written. One that never reads stops
        # answering pings, and the server's keepalive drops it: wait no longer than that.
        settings = self.kernel.settings
        limit = settings.ws_ping_interval + settings.ws_ping_timeout
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(code, reason[:120]), limit)

    async def _read_loop(self) -> tuple[int, str] | None:
        """Answer client frames; return a close (code, reason), or None when the client left."""
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return None
            text = message.get("text")
            problem: str | None
            if text is None:
                problem = "frames must be JSON text, not binary"
            elif len(text) > MAX_FRAME_CHARS:
                problem = f"frame longer than {MAX_FRAME_CHARS} characters"
            else:
                problem = await self._handle(text)
            if problem is not None:
                self.bad_frames += 1
                await self._error(ErrorCode.BAD_FRAME, problem)
                if self.bad_frames >= MAX_BAD_FRAMES:
                    return (CloseCode.POLICY_VIOLATION, "too many bad frames")

    async def _handle(self, text: str) -> str | None:
        """Handle one text frame; return what is wrong with it, or None."""
        try:
            doc = json.loads(text)
        except ValueError:
            return "frame is not valid JSON"
        if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
            return 'frame must be a JSON object with a "type"'
        kind = doc["type"]
        if kind == "ping":
            await self.send_json({"type": "pong"})
            return None
        if kind == TYPING:
            try:
                typing = TypingIn.model_validate(doc)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first.get("loc", ())) or "frame"
                return f"typing: {where}: {first.get('msg', 'invalid')}"
            await self._typing(typing)
            return None
        return f"unknown frame type {kind[:40]!r}"

    async def _error(self, code: str, message: str) -> None:
        await self.send_json({"type": "error", "error": code, "message": message})

    def _typing_allowed(self) -> bool:
        now = time.monotonic()
        self._typing_tokens = min(
            TYPING_BURST, self._typing_tokens + (now - self._typing_at) * TYPING_RATE
        )
        self._typing_at = now
        if self._typing_tokens < 1:
            return False
        self._typing_tokens -= 1
        return True

    async def _typing(self, frame: TypingIn) -> None:
        """Forward a typing indicator to the other people who may see the ticket."""
        p = self.principal
        if p.user_id is None:
            await self._error(ErrorCode.FORBIDDEN, "typing needs a user login, not an API token")
            return
        if not self._typing_allowed():
            await self._error(ErrorCode.RATE_LIMITED, "too many typing frames; slow down")
            return
        async with self.kernel.read() as db:
            row = (
                await db.execute(
                    select(Ticket.company_id, Ticket.department_id, Ticket.assignee_id).where(
                        Ticket.id == frame.ticket_id
                    )
                )
            ).first()
        if row is None or not can_see_ticket(p, *row):
            await self._error(ErrorCode.NOT_FOUND, "ticket not found")
            return
        company_id, department_id, assignee_id = row
        item = HubItem(
            company_id,
            None,
            TYPING,
            {
                "ticket_id": str(frame.ticket_id),
                "user_id": str(p.user_id),
                "name": p.name,
                "typing": frame.typing,
            },
            department_id=department_id,
        )
        sender = p.user_id
        self.daemon.hub.send_ephemeral(
            item,
            lambda s: (
                s.principal.user_id != sender
                and can_see_ticket(s.principal, company_id, department_id, assignee_id)
            ),
        )


def _is_disconnect(exc: BaseException) -> bool:
    # uvicorn's ClientDisconnected is an OSError; Starlette raises WebSocketDisconnected
    # (a RuntimeError) when used after a disconnect.
    return isinstance(exc, WebSocketDisconnect | WebSocketDisconnected | OSError)


async def _cancel(tasks: set[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
