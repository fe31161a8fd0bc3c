"""How the inbound pipeline schedules its writes: latency, not only throughput.

A company's leader commits each raw event with its processing, in one transaction
per batch (`_store_and_process`), rather than a group commit and then a batch. If
that transaction fails, the raw events are stored on their own first and processed
as before, so nothing that could be stored is refused. Either way a caller is
answered only once what it is answered for is committed: a crash between that commit
and the answer leaves an event the engine delivers again, which must change nothing
(exactly once). On SQLite (one writer at a time) the same leader runs the group
commits of what is stored on its own; on PostgreSQL they have a leader of their own.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from shared.enums import WebhookEventState
from tests.zapd.api import seed
from tests.zapd.api.conftest import Live
from zapd.connectors.events import AnyEngineEvent
from zapd.db.models import Event, Message, Ticket, WebhookEvent
from zapd.services.conversations.inbound import Inbound


def _sqlite_only(live: Live) -> None:
    if live.backend != "sqlite":
        pytest.skip("one leader for group commits and batches is SQLite's (one writer)")


async def _received(live: Live, sid: uuid.UUID) -> tuple[int, int, list[WebhookEventState]]:
    """(inbound messages, tickets, states of the stored raw events) of the session."""
    async with live.kernel.read() as db:
        messages = await db.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.session_id == sid, Message.wa_message_id.is_not(None))
        )
        tickets = await db.scalar(
            select(func.count()).select_from(Ticket).where(Ticket.session_id == sid)
        )
        states = list(
            await db.scalars(select(WebhookEvent.state).where(WebhookEvent.session_id == sid))
        )
    return int(messages or 0), int(tickets or 0), states


async def test_an_event_is_stored_and_processed_in_one_transaction(live: Live) -> None:
    t = await live.tenant()
    sid = await seed.session(live, t.company_id)
    inbound = live.daemon.inbound
    runs: list[tuple[str, set[uuid.UUID], set[uuid.UUID]]] = []
    store_rows, batch_tx = inbound._store_rows, inbound._batch_tx

    async def spy_store(company_id: uuid.UUID, batch: list[Any]) -> None:
        runs.append(("store", {row["id"] for row, _ in batch}, set()))
        await store_rows(company_id, batch)

    async def spy_batch(
        company_id: uuid.UUID, items: list[tuple[uuid.UUID, AnyEngineEvent]], **kw: Any
    ) -> Any:
        raw = {row["id"] for row in kw.get("raw") or ()}
        runs.append(("process", {row_id for row_id, _ in items}, raw))
        return await batch_tx(company_id, items, **kw)

    inbound._store_rows = spy_store  # type: ignore[method-assign]
    inbound._batch_tx = spy_batch  # type: ignore[method-assign]
    # Events of distinct senders arrive one by one while earlier ones are processed,
    # until the pipeline took several turns (however fast or slow this machine is).
    tasks = []
    for i in range(300):
        ev = seed.says(sid, f"+5511990003{i:03d}", f"S-{i}")
        tasks.append(asyncio.create_task(inbound.receive(sid, ev)))
        await asyncio.sleep(0.002)
        if i >= 20 and len(runs) >= 8:
            break
    ids = await asyncio.gather(*tasks)
    assert len(runs) >= 8, runs  # several turns, or the test proves nothing
    assert not [r for r in runs if r[0] == "store"], runs  # no separate group commit
    for row_id in ids:
        [(_, _, stored)] = [r for r in runs if row_id in r[1]]
        assert row_id in stored  # stored by the transaction that processed it
    messages, _, states = await _received(live, sid)
    assert messages == len(ids) and states == [WebhookEventState.PROCESSED] * len(ids)
    # Inserted PROCESSED (no UPDATE after): the row says what one processing would.
    async with live.kernel.read() as db:
        marks = (
            await db.execute(
                select(WebhookEvent.attempts, WebhookEvent.processed_at).where(
                    WebhookEvent.session_id == sid
                )
            )
        ).all()
    assert all(attempts == 1 and at is not None for attempts, at in marks), marks


async def test_a_failed_combined_transaction_stores_then_processes(live: Live) -> None:
    t = await live.tenant()
    sid = await seed.session(live, t.company_id)
    inbound = live.daemon.inbound
    batch_tx, store_rows = inbound._batch_tx, inbound._store_rows
    stored: list[uuid.UUID] = []

    async def spy_store(company_id: uuid.UUID, batch: list[Any]) -> None:
        stored.extend(row["id"] for row, _ in batch)
        await store_rows(company_id, batch)

    async def failing_when_combined(
        company_id: uuid.UUID, items: list[tuple[uuid.UUID, AnyEngineEvent]], **kw: Any
    ) -> Any:
        if kw.get("raw"):  # e.g. an event only the batch trips on, whatever the reason
            raise RuntimeError("the combined transaction failed")
        return await batch_tx(company_id, items, **kw)

    inbound._batch_tx = failing_when_combined  # type: ignore[method-assign]
    inbound._store_rows = spy_store  # type: ignore[method-assign]
    await inbound._company_of(sid)
    events = [seed.says(sid, f"+5511990005{i:03d}", f"F-{i}") for i in range(6)]
    ids = await asyncio.gather(*(inbound.receive(sid, e) for e in events))
    assert sorted(stored) == sorted(ids)  # every raw event committed on its own first
    messages, tickets, states = await _received(live, sid)
    assert (messages, tickets) == (6, 6)
    assert states == [WebhookEventState.PROCESSED] * 6


async def test_a_crash_between_the_combined_commit_and_the_answer_loses_and_doubles_nothing(
    live: Live,
) -> None:
    t = await live.tenant()
    sid = await seed.session(live, t.company_id)
    inbound = live.daemon.inbound
    batch_tx = inbound._batch_tx

    async def dies_after_commit(
        company_id: uuid.UUID, items: list[tuple[uuid.UUID, AnyEngineEvent]], **kw: Any
    ) -> Any:
        await batch_tx(company_id, items, **kw)  # committed: raw events and their work
        raise asyncio.CancelledError  # the daemon stops before any caller is answered

    inbound._batch_tx = dies_after_commit  # type: ignore[method-assign]
    await inbound._company_of(sid)
    events = [seed.says(sid, f"+5511990006{i:03d}", f"K-{i}") for i in range(5)]
    calls = [asyncio.create_task(inbound.receive(sid, e)) for e in events]
    for call in calls:
        with pytest.raises(asyncio.CancelledError):
            await call  # never acknowledged: the engine will deliver them again
    async with live.kernel.read() as db:
        head = await db.scalar(select(func.max(Event.seq)).where(Event.company_id == t.company_id))
    # A new daemon's pipeline (nothing kept in memory): nothing is left to recover, and
    # the engine's redelivery is stored again and changes nothing.
    restarted = Inbound(live.kernel)
    assert await restarted.recover() == 0
    assert all(await asyncio.gather(*(restarted.receive(sid, e) for e in events)))
    messages, tickets, states = await _received(live, sid)
    assert (messages, tickets) == (5, 5)
    assert states == [WebhookEventState.PROCESSED] * 10  # each delivery stored, once each
    async with live.kernel.read() as db:
        later = await db.scalar(
            select(func.count())
            .select_from(Event)
            .where(Event.company_id == t.company_id, Event.seq > (head or 0))
        )
    assert later == 0  # the redelivery published nothing new


async def test_a_batch_queueing_on_its_own_leader_raises_instead_of_waiting(live: Live) -> None:
    _sqlite_only(live)
    t = await live.tenant()
    sid = await seed.session(live, t.company_id)
    inbound = live.daemon.inbound
    batch_tx = inbound._batch_tx
    raised: list[RuntimeError] = []

    async def spy(
        company_id: uuid.UUID, items: list[tuple[uuid.UUID, AnyEngineEvent]], **kw: Any
    ) -> Any:
        if not raised:  # what runs inside a batch stores an event: it would wait for itself
            try:
                await inbound.store(sid, seed.says(sid, "+5511990004999", "SELF-2"))
            except RuntimeError as exc:
                raised.append(exc)
        return await batch_tx(company_id, items, **kw)

    inbound._batch_tx = spy  # type: ignore[method-assign]
    row_id = await asyncio.wait_for(
        inbound.receive(sid, seed.says(sid, "+5511990004998", "SELF-1")), 30
    )
    assert raised and row_id is not None
