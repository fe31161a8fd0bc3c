"""A Cloud API session: no QR, no socket — a token, a phone-number id and webhooks.

Invariants:
- `start` checks the token against the number (`GET /{phone-number-id}`): CONNECTED with
  the number's display phone, or ERROR with Meta's reason (190: token refused). A network
  failure leaves the session DISCONNECTED and tries again in the background.
- Inbound traffic does not pass through here: Meta posts it to zapd's webhook route,
  which stores it raw before anything else (see `zapd.services.cloud`).
- `send` maps Graph failures to `SendError`: retryable ones are transient (the outbox
  backs off), the rest are permanent and their text is Meta's "code title: details".
- Per-recipient pacing: at most `pair_burst` messages to one user at once, then one per
  `pair_interval` seconds; a send over it is handed back with `retry_after` (no attempt
  spent), so a burst of agent messages does not trip Meta's pair-rate limit (131056).
- A send repeated with the same idempotency key (a re-claim after the daemon failed to
  record the first) answers the first `wamid` without sending again, within this process.

Duplicates after a crash (the Graph API has no idempotency key). The window: Meta
accepted a send, and the daemon died before committing its `wamid`; the outbox row is
still SENDING and is claimed again once its lock runs out, `in_doubt`, by a process that
does not remember the first answer. Policy: *hold, then at-least-once*.
- Every send carries its idempotency key as `biz_opaque_callback_data`; Meta echoes it
  in the message's status webhooks (sent / delivered / read / failed), which zapd
  stores raw before anything else (zapd.services.conversations.cloud).
- An in-doubt send first asks `in_doubt_lookup(session, key)` for a stored status
  carrying its key. Found: its `wamid` is the answer, nothing is sent again (the
  statuses themselves were kept as early acks and apply when the id is recorded).
- Not found: the send is held (handed back with `retry_after`, no attempt spent) and
  asked again, for `in_doubt_hold` seconds (default 300) from the first time this
  process saw it in doubt: Meta's "sent" webhook normally arrives within seconds, and
  a webhook that met the crashed daemon is redelivered by Meta with backoff.
- Hold over and still nothing: sent again. If Meta had accepted the first one after all
  (its webhooks lost or later than the hold), the customer gets it twice: at-least-once,
  never lost. A hold of 0 sends at once. What remains of the window: a second crash
  during the hold (the row is PENDING then, not in doubt, and goes out at once), and a
  lookup that cannot reach the database (held again, like any transient failure).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.enums import Engine, SessionStatus
from shared.phone import InvalidPhone, normalize_phone
from zapd.connectors.base import EventSink, OutboundMessage, SendError
from zapd.connectors.cloud import payloads
from zapd.connectors.cloud.graph import BAD_TOKEN, CloudSettings, GraphClient, GraphError
from zapd.connectors.events import StatusEvent

log = logging.getLogger("zapd.cloud")

ROUND_TRIP_S = 0.4  # a slow Graph API send, for how many to keep in flight at the tier
MAX_SENDS_IN_FLIGHT = 64

RECHECK_SECONDS = 30.0
_REMEMBERED_SENDS = 10_000
_REMEMBERED_UPLOADS = 1_000
IN_DOUBT_RECHECK = 10.0  # seconds between two lookups of a held send
# (session id, idempotency key) -> the wamid a stored status webhook gives it, or None.
InDoubtLookup = Callable[[uuid.UUID, str], Awaitable[str | None]]


class CloudSendError(SendError):
    """A refused Cloud API send, with Meta's error code."""

    def __init__(
        self, message: str, *, transient: bool, code: int | None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, transient=transient, retry_after=retry_after)
        self.code = code


class _Pacer:
    """A token bucket per recipient: `burst` at once, then one per `interval` seconds."""

    def __init__(self, burst: int, interval: float) -> None:
        self.burst = max(1, burst)
        self.interval = interval
        self._state: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def wait(self, key: str, now: float) -> float:
        """Take a token for `key` and return 0, or return how long until one is free."""
        tokens, updated = self._state.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - updated) / self.interval)
        if tokens < 1:
            self._state[key] = (tokens, now)
            return (1 - tokens) * self.interval
        self._state[key] = (tokens - 1, now)
        self._state.move_to_end(key)
        while len(self._state) > 50_000:
            self._state.popitem(last=False)
        return 0.0


class CloudConnector:
    """One WhatsApp Business number on Meta's Cloud API."""

    engine = Engine.CLOUD

    def __init__(
        self,
        session_id: uuid.UUID,
        settings: CloudSettings,
        sink: EventSink,
        *,
        graph: GraphClient | None = None,
        in_doubt_lookup: InDoubtLookup | None = None,
    ) -> None:
        self.session_id = session_id
        self.in_doubt_lookup = in_doubt_lookup
        self.settings = settings
        self.sink = sink
        self.graph = graph or GraphClient(settings)
        self.connected = False
        # Read by the outbox lane: Meta's throughput tier, no ban-risk jitter needed.
        self.rate_per_second = settings.throughput_per_second
        self.burst = max(1, int(settings.throughput_per_second))
        self.jitter_ms = 0
        # Sends in flight at once: the tier over a slow Graph round trip (ROUND_TRIP_S),
        # so a number is not held to one send per round trip (a lane waits for each).
        self.sends_in_flight = max(
            1, min(MAX_SENDS_IN_FLIGHT, math.ceil(settings.throughput_per_second * ROUND_TRIP_S))
        )
        self.pacer = _Pacer(settings.pair_burst, settings.pair_interval)
        self._accepted: OrderedDict[str, str] = OrderedDict()
        self._uploads: OrderedDict[str, str] = OrderedDict()
        self._doubt_since: dict[str, float] = {}  # key -> when first seen in doubt
        self._recheck: asyncio.Task[None] | None = None

    async def _status(
        self, status: SessionStatus, reason: str | None = None, phone: str | None = None
    ) -> None:
        await self.sink(
            StatusEvent(
                session_id=self.session_id,
                at=datetime.now(UTC),
                status=status,
                reason=reason,
                phone=phone,
            )
        )

    async def start(self) -> None:
        """Check the token and the number; CONNECTED, ERROR or (network) retrying."""
        await self._status(SessionStatus.AUTHENTICATING, "Cloud API")
        await self._check()

    async def _check(self) -> None:
        try:
            info = await self.graph.phone_number()
        except GraphError as exc:
            self.connected = False
            if exc.retryable:
                await self._status(SessionStatus.DISCONNECTED, f"Graph API: {exc.describe()}")
                if self._recheck is None or self._recheck.done():
                    self._recheck = asyncio.create_task(self._retry_check())
                return
            reason = exc.describe()
            if exc.code == BAD_TOKEN:
                reason = f"access token refused ({reason})"
            await self._status(SessionStatus.ERROR, reason)
            return
        phone: str | None = None
        display = info.get("display_phone_number")
        if isinstance(display, str):
            try:
                phone = normalize_phone(display, strict=False)
            except InvalidPhone:
                phone = None
        self.connected = True
        await self._status(SessionStatus.CONNECTED, "Cloud API", phone)

    async def _retry_check(self) -> None:
        while not self.connected:
            await asyncio.sleep(RECHECK_SECONDS)
            await self._check()
            if not self.connected and self._recheck is not asyncio.current_task():
                return

    async def stop(self) -> None:
        """Stop sending (webhooks for the session are still stored, then refused)."""
        if self._recheck is not None:
            self._recheck.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._recheck
            self._recheck = None
        was = self.connected
        self.connected = False
        await self.graph.aclose()
        if was:
            await self._status(SessionStatus.DISCONNECTED, "stopped")

    async def logout(self) -> None:
        """A Cloud API number has no link to undo: stop, and say so."""
        await self.stop()
        await self._status(SessionStatus.DISCONNECTED, "logged out")

    # ------------------------------------------------------------------ sending

    async def _media_id(self, message: OutboundMessage) -> str | None:
        if not message.media_path or message.type not in payloads.MEDIA_KINDS:
            return None
        path = Path(message.media_path)
        key = str(path)  # media files are content-addressed: one path, one content
        cached = self._uploads.get(key)
        if cached is not None:
            return cached
        media_id = await self.graph.upload(
            path, message.media_mime or "application/octet-stream", message.media_filename
        )
        self._uploads[key] = media_id
        while len(self._uploads) > _REMEMBERED_UPLOADS:
            self._uploads.popitem(last=False)
        return media_id

    async def send(self, message: OutboundMessage) -> str:
        """Send through the Graph API and return the `wamid` (see the module docstring)."""
        if not self.connected:
            raise SendError("cloud session is not connected", transient=True)
        key = message.idempotency_key
        if key is not None and key in self._accepted:
            return self._accepted[key]
        if key is not None and (message.in_doubt or key in self._doubt_since):
            found = await self._settle_doubt(key)
            if found is not None:
                self._remember(key, found)
                return found
        wait = self.pacer.wait(message.to_jid, time.monotonic())
        if wait > 0:
            raise CloudSendError(
                f"pacing messages to this user (next in {wait:.1f} s)",
                transient=True,
                code=None,
                retry_after=wait,
            )
        try:
            media_id = await self._media_id(message)
            wa_id = await self.graph.send(payloads.build(message, media_id))
        except GraphError as exc:
            # Meta's own limits (130429, 131056) count as attempts: the outbox backs off
            # exponentially, and gives up after its maximum like any transient failure.
            raise CloudSendError(exc.describe(), transient=exc.retryable, code=exc.code) from None
        if key is not None:
            self._remember(key, wa_id)
        return wa_id

    def _remember(self, key: str, wa_id: str) -> None:
        self._accepted[key] = wa_id
        while len(self._accepted) > _REMEMBERED_SENDS:
            self._accepted.popitem(last=False)

    async def _settle_doubt(self, key: str) -> str | None:
        """Return the wamid Meta gave an in-doubt send, hold it, or let it go again.

        See the module docstring: the stored status webhooks are asked for the key; none
        yet holds the send (CloudSendError with retry_after) until `in_doubt_hold` ran
        out, then None (send again, at-least-once).
        """
        now = time.monotonic()
        since = self._doubt_since.setdefault(key, now)
        if self.in_doubt_lookup is not None:
            try:
                found = await self.in_doubt_lookup(self.session_id, key)
            except Exception as exc:  # the database may be away: ask again later
                raise CloudSendError(
                    f"in doubt whether Meta has it; cannot check now ({type(exc).__name__})",
                    transient=True,
                    code=None,
                    retry_after=IN_DOUBT_RECHECK,
                ) from None
            if found is not None:
                self._doubt_since.pop(key, None)
                log.info("cloud %s: send in doubt was delivered as %s", self.session_id, found)
                return found
        left = self.settings.in_doubt_hold - (now - since)
        if left > 0 and self.in_doubt_lookup is not None:
            raise CloudSendError(
                "in doubt whether Meta has it (the daemon stopped mid-send): waiting for "
                f"its status webhook, {left:.0f} s more before sending again",
                transient=True,
                code=None,
                retry_after=min(left, IN_DOUBT_RECHECK),
            )
        self._doubt_since.pop(key, None)
        log.warning(
            "cloud %s: no status for a send in doubt after %.0f s: sending again "
            "(the customer may get it twice)",
            self.session_id,
            now - since,
        )
        return None

    # ------------------------------------------------------------------ helpers

    async def templates(self) -> list[dict[str, Any]]:
        """Return the WABA's approved templates (GraphError when Meta refuses)."""
        return await self.graph.templates()
