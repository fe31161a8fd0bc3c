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
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.enums import Engine, MessageStatus, OutboxState
from tests.fakes.engine import RecordingEngine
from tests.zapd.api.conftest import test_settings as make_settings
from tests.zapd.db import factories as f
from zapd.connectors.base import Connector
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
