"""The realtime event stream of the zapd client: one self-healing WebSocket subscription.

Invariants:
- Events come out in order, each persisted event once: after a reconnect the stream
  resumes with `since=` (per company for global admins) and anything at or below the
  high-water mark is dropped. Ephemeral events (typing) carry no seq and are never
  deduplicated or replayed.
- Close codes come from shared.errors: `RECONNECT_CLOSE_CODES` resume with backoff and
  jitter; `CloseCode.UNAUTHORIZED` refreshes the token once (again only after a healthy
  connection) and resumes; any other code ends the stream with `StreamClosed`.
- websockets is imported only here, so a client that never subscribes never loads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
from collections import deque
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import pydantic
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConcurrencyError,
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
)

from shared.client.core import USER_AGENT
from shared.client.errors import (
    BadRequest,
    DaemonUnreachable,
    Forbidden,
    RateLimited,
    RequestTimeout,
    ServerError,
    StreamClosed,
    Unauthorized,
    ZapError,
    error_from,
)
from shared.errors import RECONNECT_CLOSE_CODES, CloseCode
from shared.protocol.events import EventEnvelope, TypingIn
from shared.urls import is_loopback

if TYPE_CHECKING:
    from shared.client import ZapClient

log = logging.getLogger("zap.client")

_TRANSIENT = (DaemonUnreachable, RequestTimeout, ServerError, RateLimited)
# A connection that lived this long (or delivered anything) earns a new token refresh.
_HEALTHY_AFTER = 10.0


def _object(frame: str | bytes) -> dict[str, Any]:
    try:
        doc = json.loads(frame)
    except (ValueError, UnicodeDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}


async def _drain(ws: ClientConnection) -> None:
    with contextlib.suppress(ConnectionClosed, ConcurrencyError):
        while True:
            await ws.recv()


class Subscription:
    """A self-healing event stream; iterate it for `EventEnvelope`s, in order, each once."""

    def __init__(
        self,
        client: ZapClient,
        since: int | Mapping[uuid.UUID, int] | None,
        *,
        backoff_initial: float,
        backoff_max: float,
        open_timeout: float,
        ping_interval: float | None,
    ) -> None:
        self.client = client
        # Highest persisted seq received (or the `since` given); per company in `positions`.
        self.last_seq: int | None = None
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.open_timeout = open_timeout
        self.ping_interval = ping_interval
        self.connects = 0  # successful handshakes
        self.delays: deque[float] = deque(maxlen=100)  # the latest backoff sleeps taken
        self.last_error: ZapError | None = None  # why the last (re)connect failed
        self._floor: int | None = None  # the plain `since`: floor of every company
        self._high: dict[uuid.UUID, int] = {}  # per-company seq high-water mark
        self._global: bool | None = None  # sees every company (learnt when first needed)
        if isinstance(since, Mapping):
            self._high = {uuid.UUID(str(k)): int(v) for k, v in since.items()}
            self._global = True
            self.last_seq = max(self._high.values(), default=None)
        else:
            self._floor = self.last_seq = since
        self._ws: ClientConnection | None = None
        self._delay = backoff_initial
        self._closed = False
        self._may_refresh = True
        self._opened_at = 0.0
        self._got_frame = False
        self._ws_token: str | None = None

    async def __aenter__(self) -> Self:
        await self._connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the stream; iteration ends."""
        self._closed = True
        ws, self._ws = self._ws, None
        if ws is None:
            return
        # Unread events fill the receive queue and websockets then stops reading, so the
        # server's closing frame would never be seen (close() waiting its full timeout):
        # drop whatever is still unread while closing.
        drain = asyncio.create_task(_drain(ws))
        try:
            await ws.close()
        finally:
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drain

    @property
    def connected(self) -> bool:
        """Tell whether a connection is open right now."""
        return self._ws is not None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> EventEnvelope:
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._ws is None:
                await self._reconnect()
                continue
            try:
                frame = await self._ws.recv()
            except ConnectionClosed as exc:
                if self._closed:
                    raise StopAsyncIteration from None
                await self._lost(exc)
                continue
            self._got_frame = True
            event = self._accept(frame)
            if event is not None:
                return event

    def _accept(self, frame: str | bytes) -> EventEnvelope | None:
        try:
            event = EventEnvelope.model_validate_json(frame)
        except pydantic.ValidationError:
            # Not an event: `{"type": "pong"}`, or `{"type": "error", ...}` about a frame
            # this client sent (a typing frame refused, for instance).
            doc = _object(frame)
            if doc.get("type") == "hello":
                self._hello(doc.get("seqs"))
            elif doc.get("type") == "error":
                log.warning("zapd refused a frame: %s %s", doc.get("error"), doc.get("message"))
            else:
                log.debug("ignoring a frame that is not an event envelope: %.200r", frame)
            return None
        if event.seq is None:
            return event  # ephemeral (typing): never replayed, never deduplicated
        high = self._high.get(event.company_id, self._floor)
        if high is not None and event.seq <= high:
            return None  # already delivered before a reconnect
        self._high[event.company_id] = event.seq
        self.last_seq = event.seq if self.last_seq is None else max(self.last_seq, event.seq)
        return event

    def _hello(self, seqs: Any) -> None:
        """Adopt the positions the daemon says the stream starts from (never going back)."""
        if not isinstance(seqs, dict):
            return
        for raw_cid, raw_seq in seqs.items():
            try:
                cid, seq = uuid.UUID(str(raw_cid)), int(raw_seq)
            except (TypeError, ValueError):
                continue
            high = self._high.get(cid, self._floor)
            if high is None or seq > high:
                self._high[cid] = seq
        if len(seqs) > 1:
            self._global = True
        if self._high:
            self.last_seq = max(self._high.values())

    async def send_typing(self, ticket_id: uuid.UUID, typing: bool = True) -> bool:
        """Tell the daemon the agent is (not) typing; False when the stream is down."""
        ws = self._ws
        if ws is None:
            return False
        try:
            await ws.send(TypingIn(ticket_id=ticket_id, typing=typing).model_dump_json())
        except ConnectionClosed:
            return False
        return True

    # ----------------------------------------------------------------- connection

    @property
    def positions(self) -> dict[uuid.UUID, int]:
        """Return the last seq received per company."""
        return dict(self._high)

    def _since(self) -> str | None:
        # A company user resumes with one number. A global admin sees every company, each
        # with its own seqs, so it resumes with `COMPANY:SEQ,...` (companies it never
        # heard of start live).
        if self._global and self._high:
            return ",".join(f"{cid}:{seq}" for cid, seq in self._high.items())
        if self._global:
            return None if self._floor is None else str(self._floor)
        return None if self.last_seq is None else str(self.last_seq)

    async def _learn_scope(self) -> None:
        if self._global is None and self._high:
            self._global = len(self._high) > 1 or (await self.client.me()).is_global_admin

    async def _handshake(self) -> ClientConnection:
        await self._learn_scope()
        url = self.client.ws_url(self._since())
        token = self.client.access_token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            return await connect(
                url,
                additional_headers=headers,
                user_agent_header=USER_AGENT,
                open_timeout=self.open_timeout,
                ping_interval=self.ping_interval,
                ping_timeout=self.ping_interval,
                close_timeout=5,
                max_size=4 * 1024 * 1024,
                proxy=None if is_loopback(url) else True,
            )
        except InvalidStatus as exc:
            r = exc.response
            answered = {k.lower(): v for k, v in r.headers.raw_items()}
            error = error_from(r.status_code, bytes(r.body or b""), answered)
            if isinstance(error, Forbidden):
                # A socket closed before being accepted answers a bare 403: every user may
                # subscribe, so a refusal at the handshake means the credentials.
                raise Unauthorized(
                    f"the event stream refused the credentials ({error.message})",
                    status=403,
                    code=error.code,
                ) from None
            raise error from None
        except InvalidURI as exc:
            raise BadRequest(f"bad zapd URL {url}: {exc}") from None
        except (OSError, TimeoutError, InvalidHandshake):
            raise DaemonUnreachable(self.client.base_url) from None

    async def _connect(self) -> None:
        token = self.client.access_token
        try:
            ws = await self._handshake()
        except Unauthorized as exc:
            await self._reauth(exc, token)
            ws = await self._handshake()  # a second refusal is final
        self._ws = ws
        self._ws_token = self.client.access_token
        self.connects += 1
        self._delay = self.backoff_initial
        self._opened_at = time.monotonic()
        self._got_frame = False

    async def _reauth(self, error: Unauthorized, token: str | None) -> None:
        """Refresh the token once after an auth refusal, or raise the refusal."""
        if self.client.access_token != token:
            return  # somebody else refreshed meanwhile: just try the new token
        if not self._may_refresh or not self.client.refresh_token:
            raise error
        self._may_refresh = False
        try:
            await self.client._refresh_after_expiry(token)
        except ZapError as exc:
            raise Unauthorized(
                f"{error.message} (token refresh failed: {exc.message})",
                status=error.status,
                code=error.code,
            ) from exc

    async def _lost(self, exc: ConnectionClosed) -> None:
        """Handle a closed connection: return to reconnect, raise when it is final."""
        self._ws = None
        code = exc.rcvd.code if exc.rcvd is not None else 1006
        reason = exc.rcvd.reason if exc.rcvd is not None else ""
        healthy = self._got_frame or time.monotonic() - self._opened_at >= _HEALTHY_AFTER
        if healthy:
            self._may_refresh = True
        if code == CloseCode.UNAUTHORIZED:
            error = Unauthorized(reason or "the event stream refused the credentials")
            await self._reauth(error, self._ws_token)
            self._delay = 0.0  # reconnect at once with the new token
            return
        if code not in RECONNECT_CLOSE_CODES:
            raise StreamClosed(f"zapd closed the event stream: {code} {reason}".strip())
        log.info("event stream closed (%s %s); resuming after seq %s", code, reason, self.last_seq)

    def _next_delay(self) -> float:
        delay = self._delay
        self._delay = min(self.backoff_max, max(self._delay * 2, self.backoff_initial))
        return random.uniform(delay / 2, delay)  # noqa: S311 - jitter, not cryptography

    async def _reconnect(self) -> None:
        """Connect again after a loss, backing off with jitter until it works."""
        while not self._closed:
            delay = self._next_delay()
            if delay > 0:
                self.delays.append(delay)
                await asyncio.sleep(delay)
            try:
                await self._connect()
            except _TRANSIENT as exc:
                self.last_error = exc
                log.info("event stream reconnect failed: %s", exc.message)
                continue
            return
