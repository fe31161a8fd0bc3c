"""The outbox worker built from a kernel alone: no daemon, no session manager, no HTTP.

The worker reaches an engine only through the `connector_of` callable it is given and
learns of new work only through the kernel's outbox wake-up signal, which `enqueue`
sets once its transaction commits. Here `connector_of` returns a recording fake engine.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.enums import Engine, MessageStatus, OutboxState
from tests.fakes.engine import RecordingEngine
from tests.zapd.api.conftest import test_settings as make_settings
from tests.zapd.db import factories as f
from zapd.connectors.base import Connector, OutboundMessage
from zapd.db.engine import session_factory
from zapd.db.models import Chat, Message, Outbox
from zapd.kernel.context import Kernel
from zapd.realtime.hub import Hub
from zapd.security import Passwords
from zapd.services.delivery import outbox
from zapd.services.delivery.outbox_worker import OutboxWorker

FAST = {
    "outbox_rate_per_second": 200.0,
    "outbox_burst": 50,
    "outbox_jitter_ms": 0,
    "outbox_backoff_base": 0.05,
    "outbox_backoff_cap": 0.1,
    "outbox_max_attempts": 3,
    "outbox_poll_interval": 30.0,  # long: only the wake-up signal can make it look sooner
}


@pytest.fixture
async def kernel(engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[Kernel]:
    settings = make_settings(tmp_path, **FAST)
    sessions = session_factory(engine)
    yield Kernel(
        settings=settings,
        engine=engine,
        sessions=sessions,
        jwt_secret="unused-" + "x" * 40,
        passwords=Passwords(time_cost=1, memory_kib=64),
        hub=Hub(sessions),
    )


async def _chat(kernel: Kernel) -> tuple[uuid.UUID, uuid.UUID]:
    """Seed a company, a session and a client's chat; return (session id, chat id)."""
    async with kernel.tx() as db:
        company = f.company()
        db.add(company)
        await db.flush()
        session = f.session(company, engine=Engine.SANDBOX)
        client = f.client(company, phone="+5511912345678")
        db.add_all([session, client])
        await db.flush()
        chat = Chat(
            company_id=company.id,
            session_id=session.id,
            client_id=client.id,
            wa_chat_id="5511912345678@s.whatsapp.net",
        )
        db.add(chat)
        await db.flush()
        return session.id, chat.id


async def _enqueue(kernel: Kernel, chat_id: uuid.UUID, *bodies: str) -> list[uuid.UUID]:
    async with kernel.tx() as db:
        chat = await db.get(Chat, chat_id)
        assert chat is not None
        return [(await outbox.enqueue(db, chat, body)).message.id for body in bodies]


async def _states(kernel: Kernel, ids: list[uuid.UUID]) -> list[OutboxState]:
    async with kernel.read() as db:
        rows = await db.scalars(select(Outbox).where(Outbox.message_id.in_(ids)))
        by_message = {r.message_id: r.state for r in rows}
    return [by_message[i] for i in ids]


async def _until(kernel: Kernel, ids: list[uuid.UUID], *states: OutboxState) -> None:
    for _ in range(400):
        if all(s in states for s in await _states(kernel, ids)):
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"outbox rows never reached {states}: {await _states(kernel, ids)}")


async def test_a_worker_from_a_kernel_sends_through_connector_of(kernel: Kernel) -> None:
    session_id, chat_id = await _chat(kernel)
    fake = RecordingEngine(session_id)
    asked: list[uuid.UUID] = []

    def connector_of(sid: uuid.UUID) -> Connector | None:
        asked.append(sid)
        return fake if sid == session_id else None

    worker = OutboxWorker(kernel, connector_of=connector_of)
    await worker.start()
    try:
        # The poll interval is 30 s: only enqueue's after-commit wake-up makes this quick.
        ids = await _enqueue(kernel, chat_id, "primeira", "segunda")
        await _until(kernel, ids, OutboxState.SENT)
    finally:
        await worker.stop()
    assert [m.body for m in fake.sent] == ["primeira", "segunda"]
    assert set(asked) == {session_id}
    assert all(m.idempotency_key for m in fake.sent)
    async with kernel.read() as db:
        messages = list((await db.scalars(select(Message).where(Message.id.in_(ids)))).all())
    assert all(m.status is MessageStatus.SENT and m.wa_message_id for m in messages)


async def test_no_running_engine_leaves_the_row_to_retry(kernel: Kernel) -> None:
    _, chat_id = await _chat(kernel)
    worker = OutboxWorker(kernel, connector_of=lambda _sid: None)
    [mid] = await _enqueue(kernel, chat_id, "ninguém ouve")
    assert await worker.run_once() == 1
    await _until(kernel, [mid], OutboxState.PENDING)
    async with kernel.read() as db:
        box = await db.scalar(select(Outbox).where(Outbox.message_id == mid))
    assert box is not None and box.attempts == 1
    assert box.last_error == "session is not running"
    await worker.stop()


async def test_a_permanent_refusal_is_dead_and_a_transient_one_retried(kernel: Kernel) -> None:
    # A retry becomes due after its backoff and is found by the next poll: poll often.
    settings = kernel.settings.model_copy(update={"outbox_poll_interval": 0.05})
    kernel = dataclasses.replace(kernel, settings=settings)
    session_id, chat_id = await _chat(kernel)
    fake = RecordingEngine(session_id)
    fake.refuse_next(1, transient=True)
    worker = OutboxWorker(kernel, connector_of=lambda _sid: fake)
    await worker.start()
    try:
        [retried] = await _enqueue(kernel, chat_id, "de novo")
        await _until(kernel, [retried], OutboxState.SENT)
        fake.refuse_next(1, transient=False)
        [refused] = await _enqueue(kernel, chat_id, "recusada")
        await _until(kernel, [refused], OutboxState.DEAD)
    finally:
        await worker.stop()
    assert [m.body for m in fake.sent] == ["de novo"]


async def test_enqueue_sets_the_wakeup_signal_only_on_commit(kernel: Kernel) -> None:
    _, chat_id = await _chat(kernel)
    kernel.outbox_wakeup.clear()
    with pytest.raises(RuntimeError, match="rolled back"):
        async with kernel.tx() as db:
            chat = await db.get(Chat, chat_id)
            assert chat is not None
            await outbox.enqueue(db, chat, "desfeita")
            raise RuntimeError("rolled back")
    assert not kernel.outbox_wakeup.is_set()
    await _enqueue(kernel, chat_id, "confirmada")
    assert kernel.outbox_wakeup.is_set()


@dataclasses.dataclass
class GatedEngine(RecordingEngine):
    """An engine whose sends wait for `gate`; its lane holds one claim (burst 1)."""

    burst: int = 1
    gate: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    async def send(self, message: OutboundMessage) -> str:
        await self.gate.wait()
        return await super().send(message)


def _counting_claims(worker: OutboxWorker) -> list[int]:
    """Count the worker's claims (each one scans for due rows)."""
    calls: list[int] = []
    real = worker.claim

    async def claim() -> Any:
        calls.append(1)
        return await real()

    worker.claim = claim  # type: ignore[method-assign]
    return calls


async def test_wakeups_for_a_full_lane_scan_nothing_but_others_are_served(kernel: Kernel) -> None:
    busy_session, busy_chat = await _chat(kernel)
    other_session, other_chat = await _chat(kernel)
    busy = GatedEngine(busy_session)
    other = RecordingEngine(other_session)
    engines = {busy_session: busy, other_session: other}
    worker = OutboxWorker(kernel, connector_of=engines.get)
    claims = _counting_claims(worker)
    await worker.start()
    try:
        [first] = await _enqueue(kernel, busy_chat, "a primeira")
        await _until(kernel, [first], OutboxState.SENDING)  # its lane (one claim) is full
        for _ in range(50):
            if busy_session in worker.lanes and worker.lanes[busy_session].room() == 0:
                break
            await asyncio.sleep(0.01)
        before = len(claims)
        waiting = []
        for i in range(5):  # each commit wakes the worker for the busy session only
            waiting += await _enqueue(kernel, busy_chat, f"na fila {i}")
        await asyncio.sleep(0.3)
        assert len(claims) == before  # nothing to scan for: that lane has no room
        [elsewhere] = await _enqueue(kernel, other_chat, "outra sessão")
        await _until(kernel, [elsewhere], OutboxState.SENT)  # another session is served at once
        busy.gate.set()  # the lane makes room: the rest of the busy session goes, in order
        await _until(kernel, [first, *waiting], OutboxState.SENT)
    finally:
        busy.gate.set()
        await worker.stop()
    assert [m.body for m in busy.sent] == ["a primeira"] + [f"na fila {i}" for i in range(5)]


async def test_wakeups_for_a_full_lane_never_put_the_poll_off(kernel: Kernel) -> None:
    settings = kernel.settings.model_copy(update={"outbox_poll_interval": 0.2})
    kernel = dataclasses.replace(kernel, settings=settings)
    busy_session, busy_chat = await _chat(kernel)
    later_session, later_chat = await _chat(kernel)
    busy = GatedEngine(busy_session)
    later = RecordingEngine(later_session)
    engines = {busy_session: busy, later_session: later}
    worker = OutboxWorker(kernel, connector_of=engines.get)
    await worker.start()
    try:
        [first] = await _enqueue(kernel, busy_chat, "ocupa a faixa")
        await _until(kernel, [first], OutboxState.SENDING)
        # A row that becomes due by time alone (as after a backoff): no wake-up names it.
        async with kernel.tx() as db:
            chat = await db.get(Chat, later_chat)
            assert chat is not None
            queued = await outbox.enqueue(db, chat, "depois do intervalo")
            assert queued.outbox is not None
            queued.outbox.next_attempt_at = queued.outbox.next_attempt_at + timedelta(seconds=0.3)
        kernel.outbox_woken.clear()
        # Meanwhile the busy session's rows keep waking the worker, far more often than
        # the poll interval.
        for _ in range(150):
            kernel.wake_outbox(busy_session)
            if later.sent:
                break
            await asyncio.sleep(0.01)
        assert [m.body for m in later.sent] == ["depois do intervalo"]
    finally:
        busy.gate.set()
        await worker.stop()


@dataclasses.dataclass
class SlowEngine(RecordingEngine):
    """An engine over a network: each send takes `delay`; in-flight sends are counted."""

    sends_in_flight: int | None = None  # None: the attribute a one-at-a-time engine lacks
    delay: float = 0.05
    gate: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    flying: dict[str, int] = dataclasses.field(default_factory=dict)  # to_jid -> in flight
    most: int = 0  # most sends in flight at once
    most_per_chat: int = 0

    def __post_init__(self) -> None:
        self.gate.set()

    async def send(self, message: OutboundMessage) -> str:
        jid = message.to_jid
        self.flying[jid] = self.flying.get(jid, 0) + 1
        self.most = max(self.most, sum(self.flying.values()))
        self.most_per_chat = max(self.most_per_chat, self.flying[jid])
        try:
            await asyncio.sleep(self.delay)
            await self.gate.wait()
            return await super().send(message)
        finally:
            self.flying[jid] -= 1


async def _chats(kernel: Kernel, n: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """Seed a company, one session and `n` clients' chats; return (session id, chat ids)."""
    async with kernel.tx() as db:
        company = f.company()
        db.add(company)
        await db.flush()
        session = f.session(company, engine=Engine.SANDBOX)
        db.add(session)
        chats = []
        for i in range(n):
            client = f.client(company, phone=f"+55119123400{i:02d}")
            db.add(client)
            await db.flush()
            chat = Chat(
                company_id=company.id,
                session_id=session.id,
                client_id=client.id,
                wa_chat_id=f"55119123400{i:02d}@s.whatsapp.net",
            )
            db.add(chat)
            chats.append(chat)
        await db.flush()
        return session.id, [c.id for c in chats]


@pytest.mark.parametrize(("in_flight", "most"), [(None, 1), (4, 4)], ids=["one", "four"])
async def test_a_lane_sends_as_many_at_once_as_its_engine_takes_in_chat_order(
    kernel: Kernel, in_flight: int | None, most: int
) -> None:
    session_id, chats = await _chats(kernel, 6)
    engine = SlowEngine(session_id, sends_in_flight=in_flight)
    worker = OutboxWorker(kernel, connector_of=lambda _sid: engine)
    sent: dict[uuid.UUID, list[uuid.UUID]] = {}
    for chat in chats:
        sent[chat] = await _enqueue(kernel, chat, "um", "dois", "três")
    await worker.start()
    try:
        await _until(kernel, [m for ids in sent.values() for m in ids], OutboxState.SENT)
    finally:
        await worker.stop()
    assert engine.most == most  # WhatsApp Web's one at a time; the Cloud API's several
    assert engine.most_per_chat == 1  # never two of one chat at once
    by_chat: dict[str, list[str | None]] = {}
    for m in engine.sent:
        by_chat.setdefault(m.to_jid, []).append(m.body)
    assert len(by_chat) == 6
    assert all(bodies == ["um", "dois", "três"] for bodies in by_chat.values())


async def test_stopping_lets_the_sends_in_flight_finish_and_hands_the_rest_back(
    kernel: Kernel,
) -> None:
    session_id, chats = await _chats(kernel, 6)
    engine = SlowEngine(session_id, sends_in_flight=3, delay=0)
    engine.gate.clear()
    worker = OutboxWorker(kernel, connector_of=lambda _sid: engine)
    ids = [(await _enqueue(kernel, chat, "olá"))[0] for chat in chats]
    await worker.start()
    try:
        for _ in range(200):
            if engine.most == 3:
                break
            await asyncio.sleep(0.01)
        assert engine.most == 3  # three in flight, three claimed and waiting in the lane
    finally:
        stopping = asyncio.create_task(worker.stop())
        await asyncio.sleep(0.05)
        engine.gate.set()  # the network answers within stop()'s grace
        await stopping
    states = await _states(kernel, ids)
    assert sorted(states) == [OutboxState.PENDING] * 3 + [OutboxState.SENT] * 3, states
    assert len(engine.sent) == 3
