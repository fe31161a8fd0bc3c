"""The outbox worker: claims due rows, sends them through the engines, records the outcome.

    PENDING ──claim──► SENDING ──engine accepts──► SENT (message SENT, early acks applied)
       ▲                  │
       └──transient───────┤ (attempts+1, exponential backoff with jitter)
                          └──permanent, or attempts exhausted──► DEAD (message FAILED)
    PENDING / DEAD ──admin drop──► CANCELLED        DEAD ──admin retry──► PENDING

How it holds together:
- A claim is a short transaction (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so several
  daemons may share one database; SQLite: BEGIN IMMEDIATE serialises it) that marks
  rows SENDING with `locked_until`. The send itself runs outside any transaction.
- The engine is handed the row's idempotency key (WhatsApp Web's client-chosen message
  id). A worker that dies after the engine accepted but before the commit leaves the
  row SENDING; once `locked_until` passes it is claimed again (marked `in_doubt`) and
  re-sent with the same key, and the engine answers the first send's id without
  delivering twice (the Cloud API has no such key: see zapd.connectors.cloud.connector).
- Messages of one chat go out in creation order: a row waits while an older row of its
  chat is PENDING or SENDING (the row carries its message's chat: one index seek per
  candidate, however long the chat's history or the queue).
- Each session has its own lane (an asyncio task) with a token bucket and a random
  pause before every send (ban-risk control), so a busy session never slows another.
  A lane sends one message at a time, or as many at once as its engine states
  (`sends_in_flight`: the Cloud API, whose round trips would otherwise cap it).
- The worker is built from the kernel and a `connector_of(session_id)` callable (the
  daemon passes its session manager's lookup), and waits on the kernel's outbox wake-up
  signal, which `outbox.enqueue` sets after its commit: no daemon object is reached.
  A wake-up names the sessions whose rows became due; when every one of them has a
  full lane, nothing is looked for (a claim would skip them): a busy, paced session
  does not cost a due-row scan per enqueue. A lane that makes room, or the poll,
  looks again.
- Acks that reached the daemon before the message had its WhatsApp id are kept as
  PendingAck rows: applied in the success transaction, and swept again now and then
  (an ack committed concurrently with that transaction can miss it on PostgreSQL).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from shared.enums import MessageStatus, MessageType, OutboxState
from shared.protocol.events import MESSAGE_STATUS
from zapd.connectors.base import Connector, OutboundMessage, SendError
from zapd.db.models import Chat, Media, Message, MessageStatusHistory, Outbox, PendingAck, Ticket
from zapd.db.types import utcnow
from zapd.kernel import events
from zapd.services.delivery import acks
from zapd.services.delivery.media import MediaStore

if TYPE_CHECKING:
    from zapd.config import ZapdSettings
    from zapd.kernel.context import Kernel

log = logging.getLogger("zapd.outbox")

CLAIM_BATCH = 100
ERROR_MAX = 2000
LANE_IDLE_SECONDS = 30.0  # a session's lane task ends after (at least) this long idle
STOP_GRACE_SECONDS = 3.0  # how long stop() lets in-flight sends finish
ACTIVE_STATES = (OutboxState.PENDING, OutboxState.SENDING)


# --------------------------------------------------------------------------- helpers


def backoff_delay(attempts: int, base: float, cap: float, rng: random.Random) -> float:
    """Return the pause before attempt `attempts + 1`: exponential, capped, with jitter.

    The nominal delay doubles per attempt (base, 2·base, 4·base...) up to `cap`; the
    pause is drawn between half and all of it, so failed sends of many messages do not
    come back in lockstep.
    """
    nominal: float = min(cap, base * (2.0 ** max(0, attempts - 1)))
    return nominal / 2 + rng.uniform(0, nominal / 2)


class TokenBucket:
    """A token bucket: `rate` sends a second on average, up to `burst` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self._loop = asyncio.get_running_loop()
        self._updated = self._loop.time()

    def _refill(self) -> None:
        now = self._loop.time()
        self.tokens = min(self.burst, self.tokens + (now - self._updated) * self.rate)
        self._updated = now

    async def take(self) -> None:
        """Wait until a token is free and take it."""
        while True:
            self._refill()
            if self.tokens >= 1:
                self.tokens -= 1
                return
            await asyncio.sleep((1 - self.tokens) / self.rate)


async def _publish_status(db: AsyncSession, message: Message) -> None:
    ticket = await db.get(Ticket, message.ticket_id) if message.ticket_id else None
    await events.for_ticket(
        db,
        message.company_id,
        MESSAGE_STATUS,
        {
            "id": message.id,
            "ticket_id": message.ticket_id,
            "status": int(message.status),
            "error": message.error,
        },
        ticket,
    )


async def mark_sent_after_retry(db: AsyncSession, message: Message, *, source: str) -> None:
    """Record that a FAILED message went out after an admin's retry.

    Delivery status only moves forward, and FAILED is terminal *for an attempt*: an
    admin's retry starts a new attempt, so this is the one place a message leaves
    FAILED — back to SENT, with its error cleared, a history row and a status event.
    Later acks then move it forward as usual.
    """
    message.status = MessageStatus.SENT
    message.error = None
    db.add(
        MessageStatusHistory(
            company_id=message.company_id,
            message_id=message.id,
            status=MessageStatus.SENT,
            source=source,
            occurred_at=utcnow(),
        )
    )
    await _publish_status(db, message)


async def fail_message(db: AsyncSession, message: Message, error: str, *, source: str) -> None:
    """Mark a message FAILED with `error` (a message already FAILED gets the new reason)."""
    error = error[:ERROR_MAX]
    if await acks.apply_status(db, message, MessageStatus.FAILED, source=source, error=error):
        return
    if message.status is MessageStatus.FAILED and message.error != error:
        message.error = error
        await _publish_status(db, message)


# --------------------------------------------------------------------------- claims


@dataclass(frozen=True)
class Claim:
    """One claimed outbox row with what the engine needs (plain values, no ORM rows)."""

    outbox_id: uuid.UUID
    message_id: uuid.UUID
    company_id: uuid.UUID
    session_id: uuid.UUID
    idempotency_key: str
    to_jid: str
    type: MessageType
    body: str | None
    media_path: str | None
    media_mime: str | None
    media_filename: str | None
    quoted_wa_message_id: str | None
    attempts: int
    interactive: dict[str, Any] | None = None  # list / buttons, for engines that have them
    template: dict[str, Any] | None = None  # a Cloud API template send
    in_doubt: bool = False  # taken back from a claim whose outcome was never recorded

    def outbound(self) -> OutboundMessage:
        """Return the engine's view of this send."""
        return OutboundMessage(
            session_id=self.session_id,
            to_jid=self.to_jid,
            type=self.type,
            body=self.body,
            media_path=self.media_path,
            media_mime=self.media_mime,
            media_filename=self.media_filename,
            quoted_wa_message_id=self.quoted_wa_message_id,
            idempotency_key=self.idempotency_key,
            interactive=self.interactive,
            template=self.template,
            in_doubt=self.in_doubt,
        )


def _stale(now: datetime) -> ColumnElement[bool]:
    """A claim whose worker died (or never recorded the outcome): take it again."""
    return and_(
        Outbox.state == OutboxState.SENDING,
        or_(Outbox.locked_until.is_(None), Outbox.locked_until < now),
    )


_OLDER = aliased(Outbox)
# No active row of an older message of the same chat: one index seek per row. Built
# once: a fresh alias per claim cost more Python than the claim's own query.
_NO_OLDER_IN_CHAT = ~(
    select(_OLDER.id)
    .where(
        _OLDER.chat_id == Outbox.chat_id,
        _OLDER.state.in_(ACTIVE_STATES),
        _OLDER.message_id < Outbox.message_id,
    )
    .exists()
)


def due_rows(
    now: datetime, *, skip_sessions: list[uuid.UUID], skip_rows: list[uuid.UUID]
) -> tuple[Select[uuid.UUID, uuid.UUID], Select[uuid.UUID, uuid.UUID]]:
    """Return the queries of claimable rows (due, first of their chat), to run in turn.

    Stale claims first (few: a worker died), then PENDING rows longest due first,
    straight from the `(state, next_attempt_at)` index: a claim reads rows until its
    LIMIT is met, not the whole queue (a backlog of thousands costs a claim what a
    short queue does), and never the rows already sent (an order the id index could
    give let SQLite walk every row ever queued).
    """
    pending = and_(Outbox.state == OutboxState.PENDING, Outbox.next_attempt_at <= now)
    # `skip_rows` (this worker's claims in flight) are SENDING: only a stale claim's
    # query could meet them (a send outlasting its lock).
    stale = and_(_stale(now), Outbox.id.not_in(skip_rows)) if skip_rows else _stale(now)

    def claimable(due: ColumnElement[bool]) -> Select[uuid.UUID, uuid.UUID]:
        stmt = select(Outbox.id, Outbox.session_id).where(due, _NO_OLDER_IN_CHAT)
        if skip_sessions:
            stmt = stmt.where(Outbox.session_id.not_in(skip_sessions))
        return stmt.order_by(Outbox.next_attempt_at)

    return claimable(stale), claimable(pending)


# --------------------------------------------------------------------------- lanes


def lane_capacity(s: ZapdSettings, rate: float | None = None, burst: int | None = None) -> int:
    """Return how many claims a session's lane holds: few enough to go out well within a lock."""
    rate = rate or s.outbox_rate_per_second
    by_lock = int(rate * s.outbox_lock_seconds / 4)
    return max(1, min(burst or s.outbox_burst, by_lock))


class _Lane:
    """One session's sender: claims queue here and go out rate-limited, `parallel` at once.

    An engine that sends one message at a time (WhatsApp Web: one browser, ban-risk
    pauses) has `parallel` 1. One that answers over the network (the Cloud API) states
    how many sends it takes in flight (`sends_in_flight`), so its throughput tier is
    not capped at one send per round trip. Order per chat holds either way: a claim
    never holds two rows of one chat (`_NO_OLDER_IN_CHAT`), so sends in flight together
    are to different chats.
    """

    def __init__(self, worker: OutboxWorker, session_id: uuid.UUID) -> None:
        s = worker.settings
        self.worker = worker
        self.session_id = session_id
        # An engine may state its own pace (the Cloud API number's throughput tier, with
        # no ban-risk jitter); otherwise the daemon's outbox settings apply.
        connector = worker.connector_of(session_id)
        rate = float(getattr(connector, "rate_per_second", None) or s.outbox_rate_per_second)
        burst = int(getattr(connector, "burst", None) or s.outbox_burst)
        jitter = getattr(connector, "jitter_ms", None)
        self.jitter_ms: int = s.outbox_jitter_ms if jitter is None else int(jitter)
        self.parallel = max(1, int(getattr(connector, "sends_in_flight", None) or 1))
        self.bucket = TokenBucket(rate, burst)
        self.capacity = max(lane_capacity(s, rate, burst), self.parallel)
        self.queue: asyncio.Queue[Claim] = asyncio.Queue()
        self.in_flight = 0
        self._done = asyncio.Event()  # a send finished: a slot is free
        self._sending: set[asyncio.Task[None]] = set()
        # Idle long enough for the bucket to refill, so a new lane starting full is fair.
        self.idle = max(LANE_IDLE_SECONDS, burst / rate)
        self.task = asyncio.create_task(self._run(), name=f"outbox-lane-{session_id}")

    def room(self) -> int:
        """Return how many more claims this lane takes now."""
        return self.capacity - self.queue.qsize() - self.in_flight

    def drain(self) -> list[Claim]:
        """Take back the claims not yet started."""
        out = []
        while not self.queue.empty():
            out.append(self.queue.get_nowait())
        return out

    async def _run(self) -> None:
        worker = self.worker
        try:
            while not worker.stopping:
                if self.in_flight >= self.parallel:
                    self._done.clear()
                    await self._done.wait()
                    continue
                try:
                    claim = await asyncio.wait_for(self.queue.get(), self.idle)
                except TimeoutError:
                    if self.queue.empty() and not self.in_flight:
                        return
                    continue
                self.in_flight += 1
                if self.parallel == 1:
                    await self._send(claim)
                else:
                    task = asyncio.create_task(self._send(claim))
                    self._sending.add(task)
                    task.add_done_callback(self._sending.discard)
        except asyncio.CancelledError:  # stop()'s grace ran out: so did the sends'
            for task in self._sending:
                task.cancel()
            raise
        finally:
            try:
                if self._sending:  # stopping: the sends in flight finish first
                    await asyncio.gather(*self._sending, return_exceptions=True)
            finally:
                if worker.lanes.get(self.session_id) is self:
                    del worker.lanes[self.session_id]

    async def _send(self, claim: Claim) -> None:
        worker = self.worker
        try:
            await worker.deliver(self, claim)
        except Exception as exc:  # the row keeps its lock and is taken again after it
            worker.kernel.db_health.report(exc, log, "outbox %s: delivery crashed", claim.outbox_id)
        finally:
            self.in_flight -= 1
            self._done.set()
            worker.held.discard(claim.outbox_id)
            worker.wake()  # room here, and maybe the next message of that chat
            if worker.stopping and not self.in_flight and self.parallel > 1:
                self.task.cancel()  # the last send is done: no need to wait for stop()'s grace


# --------------------------------------------------------------------------- worker


class OutboxWorker:
    """Sends what the outbox holds: one dispatcher task plus one lane per busy session."""

    def __init__(
        self, kernel: Kernel, connector_of: Callable[[uuid.UUID], Connector | None]
    ) -> None:
        self.kernel = kernel
        self.connector_of = connector_of
        self.lanes: dict[uuid.UUID, _Lane] = {}
        self.held: set[uuid.UUID] = set()  # claimed by this worker, not yet done
        self.stopping = False
        self.sent = 0
        self.failed = 0
        self._wake = kernel.outbox_wakeup
        self._task: asyncio.Task[None] | None = None
        self._stop_requested = asyncio.Event()
        self._rng = random.Random()  # noqa: S311 - jitter, not security
        self._last_sweep = 0.0

    @property
    def settings(self) -> ZapdSettings:
        """Return the daemon's settings (read at each use)."""
        return self.kernel.settings

    async def start(self) -> None:
        """Start the dispatcher."""
        if self._task is not None:
            return
        self.stopping = False
        self._stop_requested.clear()
        self._task = asyncio.create_task(self._loop(), name="outbox-dispatcher")

    async def stop(self) -> None:
        """Stop claiming, let in-flight sends finish briefly, hand unsent claims back."""
        self.stopping = True
        self._stop_requested.set()
        task, self._task = self._task, None
        if task is not None:
            # The dispatcher sees `stopping` at its next wake-up: a claim in progress
            # commits (its rows are handed back below) instead of being cut mid-query.
            self.wake()
            try:
                await asyncio.wait_for(asyncio.shield(task), STOP_GRACE_SECONDS)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        lanes = list(self.lanes.values())
        unsent = [c for lane in lanes for c in lane.drain()]
        for lane in lanes:
            if not lane.in_flight:  # idle, waiting for work that will not come
                lane.task.cancel()
        tasks = [lane.task for lane in lanes]
        if tasks:
            # A lane in the middle of a send finishes it (it sees `stopping` after).
            _, pending = await asyncio.wait(tasks, timeout=STOP_GRACE_SECONDS)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self.lanes.clear()
        if unsent:
            await self._give_back(unsent)
        self.held.clear()

    # ------------------------------------------------------------------ dispatch

    def wake(self) -> None:
        """Look for due rows now instead of at the next poll."""
        self.kernel.wake_outbox()

    def _only_full_lanes(self, woken: set[uuid.UUID | None]) -> bool:
        """Tell whether a wake-up named only sessions whose lanes have no room.

        A claim would skip those sessions (`skip_sessions`): looking for due rows now
        would find nothing new. Their rows are found once the lane makes room (it wakes
        the worker for any session) or at the next poll.
        """
        if not woken or None in woken:
            return False
        lanes = [self.lanes.get(session_id) for session_id in woken if session_id is not None]
        return all(lane is not None and lane.room() <= 0 for lane in lanes)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        looked = loop.time()  # when due rows were last looked for
        while not self.stopping:
            poll = self.settings.outbox_poll_interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, looked + poll - loop.time()))
            if self.stopping:
                return
            self._wake.clear()
            woken = set(self.kernel.outbox_woken)
            self.kernel.outbox_woken.clear()
            if loop.time() < looked + poll and self._only_full_lanes(woken):
                continue  # wake-ups for full lanes never put the poll off
            looked = loop.time()
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.kernel.db_health.report(
                    exc, log, "outbox dispatch failed; trying again shortly"
                )
                # Back off (wake-ups don't cut it short), but stop promptly.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._stop_requested.wait(),
                        min(5.0, self.settings.outbox_poll_interval * 10),
                    )

    async def run_once(self) -> int:
        """Claim what is due and hand it to the session lanes; return how many."""
        loop_time = asyncio.get_running_loop().time()
        if loop_time - self._last_sweep >= max(1.0, self.settings.outbox_poll_interval * 10):
            self._last_sweep = loop_time
            await self.sweep_pending_acks()
        claims = await self.claim()
        for claim in claims:
            lane = self.lanes.get(claim.session_id)
            if lane is None:
                lane = self.lanes[claim.session_id] = _Lane(self, claim.session_id)
            self.held.add(claim.outbox_id)
            lane.queue.put_nowait(claim)
        if len(claims) >= CLAIM_BATCH:
            self.wake()
        return len(claims)

    def _room(self, session_id: uuid.UUID) -> int:
        lane = self.lanes.get(session_id)
        if lane is not None:
            return lane.room()
        connector = self.connector_of(session_id)
        return lane_capacity(
            self.settings,
            getattr(connector, "rate_per_second", None),
            getattr(connector, "burst", None),
        )

    async def claim(self) -> list[Claim]:
        """Mark due rows SENDING in one short transaction and return them."""
        now = utcnow()
        full = sorted(sid for sid, lane in self.lanes.items() if lane.room() <= 0)
        held = list(self.held)
        # A read first: an idle daemon must not take SQLite's write lock every poll.
        queries = due_rows(now, skip_sessions=full, skip_rows=held)
        async with self.kernel.read() as db:
            for query in queries:
                if (await db.execute(query.limit(1))).first() is not None:
                    break
            else:
                return []
        async with self.kernel.tx() as db:
            rows: list[Any] = []
            for query in queries:
                stmt = query.limit(CLAIM_BATCH - len(rows)).with_for_update(
                    skip_locked=True, of=Outbox
                )
                rows += (await db.execute(stmt)).all()
                if len(rows) >= CLAIM_BATCH:
                    break
            chosen: list[uuid.UUID] = []
            taken: Counter[uuid.UUID] = Counter()
            for outbox_id, session_id in rows:
                if taken[session_id] < self._room(session_id):
                    chosen.append(outbox_id)
                    taken[session_id] += 1
            if not chosen:
                return []
            lock = now + timedelta(seconds=self.settings.outbox_lock_seconds)
            boxes = list(
                (
                    await db.scalars(
                        select(Outbox).where(Outbox.id.in_(chosen)).order_by(Outbox.id)
                    )
                ).all()
            )
            # Still SENDING with its lock run out: the last worker died mid-send.
            in_doubt = {box.id for box in boxes if box.state is OutboxState.SENDING}
            for box in boxes:
                box.state = OutboxState.SENDING
                box.locked_until = lock
            claims = await self._describe(db, boxes)
            return [replace(c, in_doubt=True) if c.outbox_id in in_doubt else c for c in claims]

    async def _describe(self, db: AsyncSession, boxes: list[Outbox]) -> list[Claim]:
        messages = {
            m.id: m
            for m in await db.scalars(
                select(Message).where(Message.id.in_([b.message_id for b in boxes]))
            )
        }
        chats = {
            c.id: c.wa_chat_id
            for c in await db.scalars(
                select(Chat).where(Chat.id.in_({m.chat_id for m in messages.values()}))
            )
        }
        media_ids = {m.media_id for m in messages.values() if m.media_id}
        media = (
            {x.id: x for x in await db.scalars(select(Media).where(Media.id.in_(media_ids)))}
            if media_ids
            else {}
        )
        quoted_ids = {m.quoted_message_id for m in messages.values() if m.quoted_message_id}
        quoted = (
            dict(
                (
                    await db.execute(
                        select(Message.id, Message.wa_message_id).where(Message.id.in_(quoted_ids))
                    )
                ).tuples()
            )
            if quoted_ids
            else {}
        )
        store = MediaStore.from_settings(self.settings)
        out = []
        for box in boxes:
            m = messages[box.message_id]
            file = media.get(m.media_id) if m.media_id else None
            out.append(
                Claim(
                    outbox_id=box.id,
                    message_id=m.id,
                    company_id=box.company_id,
                    session_id=box.session_id,
                    idempotency_key=box.idempotency_key,
                    to_jid=chats[m.chat_id],
                    type=m.type,
                    body=m.body,
                    media_path=str(store.path_of(file.storage_key)) if file else None,
                    media_mime=file.mime if file else None,
                    media_filename=file.filename if file else None,
                    quoted_wa_message_id=(
                        quoted.get(m.quoted_message_id) if m.quoted_message_id else None
                    ),
                    attempts=box.attempts,
                    interactive=(m.extra or {}).get("interactive"),
                    template=(m.extra or {}).get("template"),
                )
            )
        return out

    # ------------------------------------------------------------------ sending

    async def deliver(self, lane: _Lane, claim: Claim) -> None:
        """Send one claimed row (rate-limited on its lane) and record what happened."""
        connector = self.connector_of(claim.session_id)
        if connector is None:
            await self.record_failure(claim, "session is not running", transient=True)
            return
        if getattr(connector, "connected", True) is False:
            await self.record_failure(claim, "session is not connected", transient=True)
            return
        await lane.bucket.take()
        jitter = lane.jitter_ms
        if jitter:
            await asyncio.sleep(self._rng.uniform(0, jitter) / 1000)
        try:
            wa_id = await connector.send(claim.outbound())
        except SendError as exc:
            if exc.transient and exc.retry_after is not None:
                # The engine asks for a pause (per-recipient pacing): no attempt spent.
                await self._release(claim, str(exc) or "paused", delay=exc.retry_after)
                return
            await self.record_failure(claim, str(exc) or "send refused", transient=exc.transient)
            return
        except Exception as exc:
            log.warning("outbox %s: engine error %s: %s", claim.outbox_id, type(exc).__name__, exc)
            await self.record_failure(claim, f"{type(exc).__name__}: {exc}", transient=True)
            return
        try:
            await self.record_success(claim, wa_id)
        except Exception as exc:
            # The customer has it; only our bookkeeping failed. The row goes back to
            # PENDING without spending an attempt, and the re-send with the same key is
            # answered by the engine with the same id (or, if even this write fails,
            # the claim's lock runs out and the row is taken again).
            self.kernel.db_health.report(
                exc, log, "outbox %s: sent as %s but not recorded", claim.outbox_id, wa_id
            )
            await self._release(claim, f"sent, but recording it failed: {exc}")
            return
        self.sent += 1

    async def record_success(self, claim: Claim, wa_id: str) -> None:
        """In one transaction: outbox SENT, message SENT with its WhatsApp id, early acks."""
        async with self.kernel.tx() as db:
            box = await db.get(Outbox, claim.outbox_id, with_for_update=True)
            if box is None or box.state is OutboxState.SENT:
                return  # gone with its message, or recorded by another worker
            box.state = OutboxState.SENT
            box.sent_at = utcnow()
            box.locked_until = None
            message = await db.get(Message, claim.message_id, with_for_update=True)
            if message is None:
                return
            clash = await db.scalar(
                select(Message.id).where(
                    Message.company_id == message.company_id,
                    Message.session_id == message.session_id,
                    Message.wa_message_id == wa_id,
                    Message.id != message.id,
                )
            )
            if clash is None:
                message.wa_message_id = wa_id
            else:  # e.g. the engine echoed our own send as a new message first
                log.warning("outbox %s: wa id %s already on message %s", box.id, wa_id, clash)
            if message.status is MessageStatus.FAILED:
                await mark_sent_after_retry(db, message, source="outbox")
            else:
                await acks.apply_status(db, message, MessageStatus.SENT, source="outbox")
            await db.flush()
            await acks.apply_pending(db, message, "engine")

    async def record_failure(self, claim: Claim, reason: str, *, transient: bool) -> None:
        """Count a failed attempt: back to PENDING after a backoff, or DEAD (message FAILED)."""
        self.failed += 1
        reason = reason[:ERROR_MAX]
        s = self.settings
        try:
            async with self.kernel.tx() as db:
                box = await db.get(Outbox, claim.outbox_id, with_for_update=True)
                if box is None or box.state is not OutboxState.SENDING:
                    return
                box.attempts += 1
                box.max_attempts = s.outbox_max_attempts
                box.last_error = reason
                box.locked_until = None
                if transient and box.attempts < box.max_attempts:
                    box.state = OutboxState.PENDING
                    delay = backoff_delay(
                        box.attempts, s.outbox_backoff_base, s.outbox_backoff_cap, self._rng
                    )
                    box.next_attempt_at = utcnow() + timedelta(seconds=delay)
                    return
                box.state = OutboxState.DEAD
                message = await db.get(Message, box.message_id, with_for_update=True)
                if message is not None:
                    if transient:
                        reason = f"gave up after {box.attempts} attempts: {reason}"
                    await fail_message(db, message, reason, source="outbox")
        except Exception as exc:
            # Left SENDING: taken again once its lock runs out.
            self.kernel.db_health.report(
                exc, log, "outbox %s: could not record a failed send", claim.outbox_id
            )

    async def _release(self, claim: Claim, reason: str, delay: float | None = None) -> None:
        s = self.settings
        try:
            async with self.kernel.tx() as db:
                box = await db.get(Outbox, claim.outbox_id, with_for_update=True)
                if box is None or box.state is not OutboxState.SENDING:
                    return
                box.state = OutboxState.PENDING
                box.locked_until = None
                box.last_error = reason[:ERROR_MAX]
                if delay is None:
                    delay = backoff_delay(1, s.outbox_backoff_base, s.outbox_backoff_cap, self._rng)
                box.next_attempt_at = utcnow() + timedelta(seconds=delay)
        except Exception as exc:
            self.kernel.db_health.report(
                exc, log, "outbox %s: could not release the claim", claim.outbox_id
            )

    async def _give_back(self, claims: list[Claim]) -> None:
        try:
            async with self.kernel.tx() as db:
                for box in await db.scalars(
                    select(Outbox).where(
                        Outbox.id.in_([c.outbox_id for c in claims]),
                        Outbox.state == OutboxState.SENDING,
                    )
                ):
                    box.state = OutboxState.PENDING
                    box.locked_until = None
                    box.next_attempt_at = utcnow()
        except Exception as exc:
            self.kernel.db_health.report(
                exc, log, "could not hand %d unsent claims back", len(claims)
            )

    # ------------------------------------------------------------------ acks

    async def sweep_pending_acks(self, batch: int = 200) -> int:
        """Apply kept acks whose message has its WhatsApp id by now; return how many rows."""
        match = and_(
            Message.company_id == PendingAck.company_id,
            Message.session_id == PendingAck.session_id,
            Message.wa_message_id == PendingAck.wa_message_id,
        )
        async with self.kernel.read() as db:
            found = (await db.execute(select(PendingAck.id).join(Message, match).limit(1))).first()
        if found is None:
            return 0
        done = 0
        async with self.kernel.tx() as db:
            rows = (
                await db.execute(
                    select(PendingAck, Message)
                    .join(Message, match)
                    .order_by(PendingAck.id)
                    .limit(batch)
                )
            ).all()
            for pending, message in sorted(rows, key=lambda r: (r[1].id, r[0].status.rank)):
                await acks.apply_status(
                    db, message, pending.status, at=pending.occurred_at, source="engine"
                )
                await db.delete(pending)
                done += 1
        return done
