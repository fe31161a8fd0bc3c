"""The outbox worker against the sandbox engine, on both backends, with a fast config.

Failures are injected (transient and permanent refusals, a dropped connection, a crash
between the engine's accept and the commit); whatever happens, every message ends
either SENT and delivered exactly once, or DEAD with its message FAILED and the reason.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.enums import MessageDirection, MessageStatus, MessageType, OutboxState, TicketStatus
from shared.phone import e164_to_jid, normalize_phone
from tests.zapd.api.conftest import Live, Tenant, start_live, stop_live
from tests.zapd.api.conftest import test_settings as make_settings
from tests.zapd.api.test_conversation import wait_for
from zapd.connectors.base import OutboundMessage
from zapd.connectors.sandbox import AckTiming
from zapd.db.models import (
    Chat,
    Client,
    Message,
    MessageStatusHistory,
    Outbox,
    PendingAck,
    Ticket,
)
from zapd.db.types import utcnow
from zapd.kernel.scoping import next_ticket_number
from zapd.services.delivery import outbox
from zapd.services.delivery.outbox_worker import Claim, TokenBucket, backoff_delay

# Fast and deterministic: no jitter, short backoff, few attempts, quick polls.
FAST: dict[str, Any] = {
    "outbox_rate_per_second": 200.0,
    "outbox_burst": 50,
    "outbox_jitter_ms": 0,
    "outbox_backoff_base": 0.05,
    "outbox_backoff_cap": 0.2,
    "outbox_max_attempts": 4,
    "outbox_poll_interval": 0.05,
}
QUICK_ACKS = AckTiming(sent=0.01, delivered=0.03, read=0.06, jitter=0.01)
DONE = (OutboxState.SENT, OutboxState.DEAD, OutboxState.CANCELLED)

MakeLive = Callable[..., Awaitable[Live]]


@pytest.fixture
async def make_live(engine: AsyncEngine, backend: Any, tmp_path: Path) -> AsyncIterator[MakeLive]:
    """Start (once per test) a zapd with the FAST outbox config plus `overrides`."""
    running: list[tuple[Live, Any, asyncio.Task[None]]] = []

    async def make(**overrides: Any) -> Live:
        settings = make_settings(tmp_path, **{**FAST, **overrides})
        lv, server, task = await start_live(engine, backend.name, settings)
        lv.daemon.sandbox.timing = QUICK_ACKS
        running.append((lv, server, task))
        return lv

    yield make
    for lv, server, task in running:
        await stop_live(lv, server, task)


# --------------------------------------------------------------------------- helpers


async def connect(
    live: Live, t: Tenant, name: str = "Atendimento", phone: str = "+551130001000"
) -> str:
    """Create a sandbox session over the API, scan its QR, wait until CONNECTED."""
    r = await t.admin.post("/api/v1/sessions", json={"name": name, "engine": 0})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    assert (await t.admin.post(f"/api/v1/sessions/{sid}/start")).status_code == 202

    async def qr() -> Any:
        return (await t.admin.get(f"/api/v1/sessions/{sid}/qr")).json()["qr"]

    await wait_for(qr)
    r = await t.admin.post(f"/api/v1/sandbox/{sid}/scan", json={"phone": phone})
    assert r.status_code == 200, r.text

    async def connected() -> bool:
        return (await t.admin.get(f"/api/v1/sessions/{sid}")).json()["status"] == 0

    await wait_for(connected)
    return sid


async def seed_ticket(
    live: Live,
    company_id: uuid.UUID,
    session_id: str | uuid.UUID,
    phone: str,
    *,
    department_id: uuid.UUID | None = None,
    status: TicketStatus = TicketStatus.PENDING,
    **kw: Any,
) -> tuple[uuid.UUID, uuid.UUID]:
    """Insert a client, their chat (a real JID) and a ticket; return (ticket id, chat id)."""
    e164 = normalize_phone(phone)
    async with live.kernel.tx() as db:
        client = Client(company_id=company_id, phone=e164, profile_name="Cliente")
        db.add(client)
        await db.flush()
        chat = Chat(
            company_id=company_id,
            session_id=uuid.UUID(str(session_id)),
            client_id=client.id,
            wa_chat_id=e164_to_jid(e164),
        )
        db.add(chat)
        await db.flush()
        number = await next_ticket_number(db, company_id)
        ticket = Ticket(
            company_id=company_id,
            number=number,
            client_id=client.id,
            session_id=chat.session_id,
            chat_id=chat.id,
            department_id=department_id,
            status=status,
            **kw,
        )
        db.add(ticket)
        await db.flush()
        return ticket.id, chat.id


async def enqueue(live: Live, chat_id: uuid.UUID, *bodies: str, **kw: Any) -> list[uuid.UUID]:
    """Queue texts on a chat through `outbox.enqueue`, in one transaction; return ids."""
    ids = []
    async with live.kernel.tx() as db:
        chat = await db.get(Chat, chat_id)
        assert chat is not None
        for body in bodies:
            ids.append((await outbox.enqueue(db, chat, body, **kw)).message.id)
    return ids


async def settle(live: Live, message_ids: list[uuid.UUID], within: float = 20.0) -> None:
    """Wait until every given message's outbox row is SENT, DEAD or CANCELLED."""

    async def done() -> bool:
        async with live.kernel.read() as db:
            states = (
                await db.scalars(select(Outbox.state).where(Outbox.message_id.in_(message_ids)))
            ).all()
        return len(states) == len(message_ids) and all(s in DONE for s in states)

    await wait_for(done, within)


async def rows(live: Live, message_id: uuid.UUID) -> tuple[Outbox, Message]:
    """Return a message's outbox row and the message."""
    async with live.kernel.read() as db:
        box = await db.scalar(select(Outbox).where(Outbox.message_id == message_id))
        msg = await db.get(Message, message_id)
        assert box is not None and msg is not None
        return box, msg


def bodies(live: Live, sid: str | uuid.UUID, phone: str) -> list[str | None]:
    """Return what a simulated customer received, in order."""
    return [d.body for d in live.daemon.sandbox.inbox(uuid.UUID(str(sid)), phone)]


# --------------------------------------------------------------------------- units


def test_backoff_doubles_caps_and_jitters() -> None:
    import random

    rng = random.Random(7)
    for attempts, nominal in [(1, 2.0), (2, 4.0), (3, 8.0), (9, 300.0), (30, 300.0)]:
        for _ in range(20):
            d = backoff_delay(attempts, 2.0, 300.0, rng)
            assert nominal / 2 <= d <= nominal
    spread = {round(backoff_delay(3, 2.0, 300.0, rng), 3) for _ in range(20)}
    assert len(spread) > 10  # jittered, not lockstep


async def test_token_bucket_allows_burst_then_rate() -> None:
    bucket = TokenBucket(rate=20.0, burst=3)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for _ in range(3):
        await bucket.take()
    assert loop.time() - start < 0.03
    for _ in range(4):
        await bucket.take()
    assert loop.time() - start >= 4 / 20 - 0.01


# --------------------------------------------------------------------------- outcomes


async def test_transient_failures_are_retried_then_sent_once(make_live: MakeLive) -> None:
    live = await make_live()
    t = await live.tenant()
    sid = await connect(live, t)
    _, chat = await seed_ticket(live, t.company_id, sid, "+5511912340001")
    live.daemon.sandbox.fail_next_sends(uuid.UUID(sid), 2, transient=True)
    [mid] = await enqueue(live, chat, "Seu exame está pronto")
    await settle(live, [mid])
    box, msg = await rows(live, mid)
    assert box.state is OutboxState.SENT and box.attempts == 2 and box.sent_at is not None
    assert box.last_error == "injected sandbox failure" and box.locked_until is None
    inbox = live.daemon.sandbox.inbox(uuid.UUID(sid), "+5511912340001")
    assert [d.body for d in inbox] == ["Seu exame está pronto"]
    assert msg.wa_message_id == inbox[0].wa_message_id
    assert msg.status.rank >= MessageStatus.SENT.rank and msg.error is None
    async with live.kernel.read() as db:
        first = await db.scalar(
            select(MessageStatusHistory)
            .where(MessageStatusHistory.message_id == mid)
            .order_by(MessageStatusHistory.created_at)
            .limit(1)
        )
        assert first is not None and first.status is MessageStatus.SENT
        assert first.source == "outbox"


async def test_permanent_failure_is_dead_at_once(make_live: MakeLive) -> None:
    live = await make_live()
    t = await live.tenant()
    sid = await connect(live, t)
    _, chat = await seed_ticket(live, t.company_id, sid, "+5511912340002")
    live.daemon.sandbox.fail_next_sends(uuid.UUID(sid), 1, transient=False)
    [mid] = await enqueue(live, chat, "Não vai")
    await settle(live, [mid])
    box, msg = await rows(live, mid)
    assert box.state is OutboxState.DEAD and box.attempts == 1
    assert msg.status is MessageStatus.FAILED and msg.error == "injected sandbox failure"
    assert msg.wa_message_id is None
    assert bodies(live, sid, "+5511912340002") == []


async def test_attempts_run_out_into_the_dead_letter(make_live: MakeLive) -> None:
    live = await make_live()
    t = await live.tenant()
    sid = await connect(live, t)
    _, chat = await seed_ticket(live, t.company_id, sid, "+5511912340003")
    live.daemon.sandbox.fail_next_sends(uuid.UUID(sid), 10, transient=True)
    [mid] = await enqueue(live, chat, "Tentativas demais")
    await settle(live, [mid])
    box, msg = await rows(live, mid)
    assert box.state is OutboxState.DEAD and box.attempts == 4 and box.max_attempts == 4
    assert msg.status is MessageStatus.FAILED
    assert msg.error == "gave up after 4 attempts: injected sandbox failure"
    assert len(live.daemon.sandbox.session(uuid.UUID(sid)).fail_sends) == 6  # 4 spent
    assert bodies(live, sid, "+5511912340003") == []


async def test_chaos_ends_sent_once_or_dead_never_twice(make_live: MakeLive) -> None:
    live = await make_live()
    t = await live.tenant()
    sid = await connect(live, t)
    session_id = uuid.UUID(sid)
    phones = ["+5511912341001", "+5511912341002", "+5511912341003"]
    chats = [(await seed_ticket(live, t.company_id, sid, p))[1] for p in phones]
    net = live.daemon.sandbox
    net.fail_next_sends(session_id, 3, transient=True)
    net.fail_next_sends(session_id, 1, transient=False)
    net.fail_next_sends(session_id, 2, transient=True)
    created: list[tuple[uuid.UUID, str, str]] = []  # message id, phone, body
    async with live.kernel.tx() as db:
        for i in range(12):
            chat = await db.get(Chat, chats[i % 3])
            assert chat is not None
            body = f"mensagem {i:02d}"
            q = await outbox.enqueue(db, chat, body)
            created.append((q.message.id, phones[i % 3], body))
    await asyncio.sleep(0.05)
    await net.drop_connection(session_id)
    await asyncio.sleep(0.15)
    connector = live.daemon.engines.connector(session_id)
    assert connector is not None
    await connector.start()  # linked: reconnects without a QR
    await settle(live, [m for m, _, _ in created])

    dead = 0
    for mid, phone, body in created:
        box, msg = await rows(live, mid)
        received = bodies(live, sid, phone)
        if box.state is OutboxState.SENT:
            assert received.count(body) == 1, (body, received)
            assert msg.wa_message_id is not None and msg.status is not MessageStatus.FAILED
        else:
            assert box.state is OutboxState.DEAD
            dead += 1
            assert body not in received
            assert msg.status is MessageStatus.FAILED and msg.error
    assert dead >= 1  # the permanent refusal
    # Each chat got its messages in creation order.
    for phone in phones:
        sent_order = [b for _, p, b in created if p == phone]
        received = bodies(live, sid, phone)
        assert received == [b for b in sent_order if b in received]
    assert net.session(session_id).fail_sends == []


async def test_a_chat_waits_for_its_older_message(make_live: MakeLive) -> None:
    live = await make_live(outbox_backoff_base=0.2, outbox_backoff_cap=0.4)
    t = await live.tenant()
    sid = await connect(live, t)
    _, chat = await seed_ticket(live, t.company_id, sid, "+5511912340004")
    _, other = await seed_ticket(live, t.company_id, sid, "+5511912340005")
    live.daemon.sandbox.fail_next_sends(uuid.UUID(sid), 1, transient=True)
    first, second = await enqueue(live, chat, "primeira", "segunda")
    [elsewhere] = await enqueue(live, other, "outro chat")
    await settle(live, [first, second, elsewhere])
    assert bodies(live, sid, "+5511912340004") == ["primeira", "segunda"]
    assert bodies(live, sid, "+5511912340005") == ["outro chat"]
    box, _ = await rows(live, first)
    assert box.attempts == 1


# --------------------------------------------------------------------------- crashes


async def test_crash_between_accept_and_commit_delivers_once(
    make_live: MakeLive, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = await make_live()
    t = await live.tenant()
    sid = await connect(live, t)
    _, chat = await seed_ticket(live, t.company_id, sid, "+5511912340006")
    worker = live.daemon.outbox_worker
    original = worker.record_success
    seen: list[str] = []

    async def crash_once(claim: Claim, wa_id: str) -> None:
        seen.append(wa_id)
        if len(seen) == 1:
            raise RuntimeError("simulated crash before commit")
        await original(claim, wa_id)

    monkeypatch.setattr(worker, "record_success", crash_once)
    [mid] = await enqueue(live, chat, "Uma vez só")
    await settle(live, [mid])
    box, msg = await rows(live, mid)
    assert box.state is OutboxState.SENT
    assert box.attempts == 0  # the send never failed; only our bookkeeping did
    assert "simulated crash" in (box.last_error or "")
    assert len(seen) == 2 and seen[0] == seen[1] == msg.wa_message_id
    assert bodies(live, sid, "+5511912340006") == ["Uma vez só"]


async def test_stale_claim_is_taken_again_with_the_same_key(make_live: MakeLive) -> None:
    live = await make_live()
    t = await live.tenant()
    sid = await connect(live, t)
    session_id = uuid.UUID(sid)
    phone = "+5511912340007"
    ticket_id, chat_id = await seed_ticket(live, t.company_id, sid, phone)
    key = f"crash-{uuid.uuid4()}"
    # A previous worker handed the message to the engine, then died before committing.
    connector = live.daemon.engines.connector(session_id)
    assert connector is not None
    accepted = await connector.send(
        OutboundMessage(
            session_id=session_id,
            to_jid=e164_to_jid(phone),
            type=MessageType.TEXT,
            body="Recuperada",
            idempotency_key=key,
        )
    )

    async def acks_kept() -> bool:  # the engine's acks came back for an unknown id
        async with live.kernel.read() as db:
            n = await db.scalar(
                select(func.count())
                .select_from(PendingAck)
                .where(PendingAck.wa_message_id == accepted)
            )
        return n == 3

    await wait_for(acks_kept)
    async with live.kernel.tx() as db:
        chat = await db.get(Chat, chat_id)
        ticket = await db.get(Ticket, ticket_id)
        assert chat is not None
        q = await outbox.enqueue(db, chat, "Recuperada", ticket=ticket, idempotency_key=key)
        assert q.outbox is not None
        q.outbox.state = OutboxState.SENDING
        q.outbox.locked_until = utcnow() - timedelta(seconds=1)
        mid = q.message.id
    await settle(live, [mid])

    async def read() -> bool:
        return (await rows(live, mid))[1].status is MessageStatus.READ

    await wait_for(read)
    box, msg = await rows(live, mid)
    assert box.state is OutboxState.SENT and msg.wa_message_id == accepted
    assert bodies(live, sid, phone) == ["Recuperada"]
    async with live.kernel.read() as db:
        assert await db.scalar(select(func.count()).select_from(PendingAck)) == 0
        history = (
            await db.scalars(
                select(MessageStatusHistory.status)
                .where(MessageStatusHistory.message_id == mid)
                .order_by(MessageStatusHistory.created_at)
            )
        ).all()
        assert list(history) == [MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ]


async def test_session_not_running_is_retried_until_it_is(make_live: MakeLive) -> None:
    live = await make_live(outbox_max_attempts=100)
    t = await live.tenant()
    sid = await connect(live, t)
    _, chat = await seed_ticket(live, t.company_id, sid, "+5511912340008")
    assert (await t.admin.post(f"/api/v1/sessions/{sid}/stop")).status_code == 202
    [mid] = await enqueue(live, chat, "Quando voltar")

    async def retried() -> bool:
        box, _ = await rows(live, mid)
        return box.attempts >= 2 and box.last_error == "session is not running"

    await wait_for(retried)
    assert (await t.admin.post(f"/api/v1/sessions/{sid}/start")).status_code == 202
    await settle(live, [mid])
    box, _ = await rows(live, mid)
    assert box.state is OutboxState.SENT
    assert bodies(live, sid, "+5511912340008") == ["Quando voltar"]


# --------------------------------------------------------------------------- rate limit


async def test_rate_limit_per_session_does_not_slow_others(make_live: MakeLive) -> None:
    rate, burst, n = 5.0, 2, 7
    live = await make_live(outbox_rate_per_second=rate, outbox_burst=burst)
    t = await live.tenant()
    busy = await connect(live, t, "Busy", "+551130001001")
    quiet = await connect(live, t, "Quiet", "+551130001002")
    busy_chats = [
        (await seed_ticket(live, t.company_id, busy, f"+55119123420{i:02d}"))[1] for i in range(n)
    ]
    _, quiet_chat = await seed_ticket(live, t.company_id, quiet, "+5511912343000")
    start = utcnow()
    ids: list[uuid.UUID] = []
    async with live.kernel.tx() as db:
        for chat_id in busy_chats:
            chat = await db.get(Chat, chat_id)
            assert chat is not None
            ids.append((await outbox.enqueue(db, chat, "promoção")).message.id)
        chat = await db.get(Chat, quiet_chat)
        assert chat is not None
        quiet_id = (await outbox.enqueue(db, chat, "urgente")).message.id
    await settle(live, [*ids, quiet_id])
    # When the engine took each message (the sandbox stamps deliveries).
    times = sorted(
        (d.at - start).total_seconds()
        for i in range(n)
        for d in live.daemon.sandbox.inbox(uuid.UUID(busy), f"+55119123420{i:02d}")
    )
    assert len(times) == n
    # The first `burst` may go at once, then one every 1/rate seconds at most.
    assert times[-1] - times[0] >= (n - burst) / rate - 0.05, times
    [quiet_msg] = live.daemon.sandbox.inbox(uuid.UUID(quiet), "+5511912343000")
    quiet_at = (quiet_msg.at - start).total_seconds()
    assert quiet_at < times[0] + (n - burst) / rate / 2, (quiet_at, times)  # not held back


# --------------------------------------------------------------------------- acks


async def test_acks_out_of_order_end_read(make_live: MakeLive) -> None:
    live = await make_live()
    live.daemon.sandbox.timing = AckTiming(jitter=0.02, shuffle=True)
    t = await live.tenant()
    sid = await connect(live, t)
    _, chat = await seed_ticket(live, t.company_id, sid, "+5511912340009")
    ids = await enqueue(live, chat, *[f"ack {i}" for i in range(5)])
    await settle(live, ids)

    async def all_read() -> bool:
        async with live.kernel.read() as db:
            statuses = (await db.scalars(select(Message.status).where(Message.id.in_(ids)))).all()
        return all(s is MessageStatus.READ for s in statuses)

    await wait_for(all_read)
    async with live.kernel.read() as db:
        for mid in ids:
            history = (
                await db.scalars(
                    select(MessageStatusHistory.status)
                    .where(MessageStatusHistory.message_id == mid)
                    .order_by(MessageStatusHistory.created_at, MessageStatusHistory.id)
                )
            ).all()
            ranks = [s.rank for s in history]
            assert ranks == sorted(set(ranks)), history  # only ever forward
            assert history[-1] is MessageStatus.READ


async def test_acks_before_the_id_is_recorded_are_applied(
    make_live: MakeLive, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = await make_live()
    t = await live.tenant()
    sid = await connect(live, t)
    _, chat = await seed_ticket(live, t.company_id, sid, "+5511912340010")
    worker = live.daemon.outbox_worker
    original = worker.record_success
    kept: list[int] = []

    async def slow_commit(claim: Claim, wa_id: str) -> None:
        async def early() -> int:
            async with live.kernel.read() as db:
                return int(
                    await db.scalar(
                        select(func.count())
                        .select_from(PendingAck)
                        .where(PendingAck.wa_message_id == wa_id)
                    )
                    or 0
                )

        await wait_for(lambda: _at_least(early, 3))
        kept.append(await early())
        await original(claim, wa_id)

    monkeypatch.setattr(worker, "record_success", slow_commit)
    [mid] = await enqueue(live, chat, "Ack adiantado")
    await settle(live, [mid])
    _, msg = await rows(live, mid)
    assert kept == [3]
    assert msg.status is MessageStatus.READ
    async with live.kernel.read() as db:
        assert await db.scalar(select(func.count()).select_from(PendingAck)) == 0
        sources = (
            await db.execute(
                select(MessageStatusHistory.status, MessageStatusHistory.source)
                .where(MessageStatusHistory.message_id == mid)
                .order_by(MessageStatusHistory.created_at)
            )
        ).all()
        assert [tuple(s) for s in sources] == [
            (MessageStatus.SENT, "outbox"),
            (MessageStatus.DELIVERED, "engine"),
            (MessageStatus.READ, "engine"),
        ]


async def _at_least(count: Callable[[], Awaitable[int]], n: int) -> bool:
    return await count() >= n


async def test_sweep_applies_acks_kept_for_a_message_that_has_its_id(
    make_live: MakeLive,
) -> None:
    live = await make_live()
    t = await live.tenant()
    sid = await connect(live, t)
    ticket_id, chat_id = await seed_ticket(live, t.company_id, sid, "+5511912340011")
    async with live.kernel.tx() as db:
        chat = await db.get(Chat, chat_id)
        assert chat is not None
        # Sent from elsewhere (no outbox row): an id, and an ack that missed it.
        msg = Message(
            company_id=t.company_id,
            session_id=chat.session_id,
            chat_id=chat.id,
            ticket_id=ticket_id,
            direction=MessageDirection.OUTBOUND,
            status=MessageStatus.SENT,
            body="x",
            wa_message_id="WAMID-SWEEP-1",
        )
        db.add(msg)
        db.add(
            PendingAck(
                company_id=t.company_id,
                session_id=chat.session_id,
                wa_message_id="WAMID-SWEEP-1",
                status=MessageStatus.DELIVERED,
            )
        )
        await db.flush()
        mid = msg.id
    assert await live.daemon.outbox_worker.sweep_pending_acks() == 1
    async with live.kernel.read() as db:
        got = await db.get(Message, mid)
        assert got is not None and got.status is MessageStatus.DELIVERED
        assert await db.scalar(select(func.count()).select_from(PendingAck)) == 0
    assert await live.daemon.outbox_worker.sweep_pending_acks() == 0
