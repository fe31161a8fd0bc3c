"""The batched inbound path: a poison event fails alone, a batch numbers its events once.

Events handed to `Inbound.receive` at once (many senders) are stored in one group
commit and processed in one transaction; these tests check what a batch must keep:
each event applied exactly once, a bad one marked FAILED without taking the others
down, realtime events numbered without gaps in the order they were published.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from shared.enums import Engine, FlowState, TicketStatus, WebhookEventState
from tests.zapd.api import seed
from tests.zapd.api.conftest import Live
from zapd.connectors.events import AnyEngineEvent
from zapd.db.models import Client, Company, Event, Message, Ticket, WebhookEvent
from zapd.db.types import new_id, utcnow
from zapd.kernel.held import Held
from zapd.services.people import identity
from zapd.services.people.identity import Identity


def _spy_batches(live: Live) -> list[list[uuid.UUID]]:
    """Record the stored row ids of every batch the pipeline processes."""
    inbound = live.daemon.inbound
    real = inbound._batch_tx
    seen: list[list[uuid.UUID]] = []

    async def spy(
        company_id: uuid.UUID, items: list[tuple[uuid.UUID, AnyEngineEvent]], **kw: Any
    ) -> Any:
        seen.append([row_id for row_id, _ in items])
        return await real(company_id, items, **kw)

    inbound._batch_tx = spy  # type: ignore[method-assign]
    return seen


def _spy_careful(live: Live) -> list[bool]:
    """Record, per batch transaction, whether it ran careful (a straight run failed)."""
    inbound = live.daemon.inbound
    real = inbound._batch_tx
    careful: list[bool] = []

    async def spy(company_id: uuid.UUID, items: Any, **kw: Any) -> Any:
        careful.append(bool(kw.get("careful")))
        return await real(company_id, items, **kw)

    inbound._batch_tx = spy  # type: ignore[method-assign]
    return careful


async def test_a_poison_event_fails_alone_and_its_batch_commits(live: Live) -> None:
    t = await live.tenant()
    sid = await seed.session(live, t.company_id)
    batches = _spy_batches(live)
    phones = [f"+5511990000{i:03d}" for i in range(8)]
    good = [seed.says(sid, p, f"B-{i}", "oi") for i, p in enumerate(phones)]
    # A chat id no JID parser accepts: processing it fails deterministically.
    poison = seed.says(sid, "+5511990009999", "B-POISON", "oi", chat="not-a-jid")
    events = [*good[:4], poison, *good[4:]]
    # The session's company known beforehand: no caller then waits on the database
    # before it queues its raw event, so all nine queue in one turn of the loop and
    # the poison cannot land in a batch of its own however slow the machine.
    await live.daemon.inbound._company_of(sid)
    ids = await asyncio.gather(*(live.daemon.inbound.receive(sid, e) for e in events))
    poison_id = ids[4]
    assert poison_id is not None
    together = [b for b in batches if poison_id in b]
    assert together and len(together[0]) > 1, batches  # it shared a batch with good events

    async with live.kernel.read() as db:
        states = dict(
            (
                await db.execute(
                    select(WebhookEvent.id, WebhookEvent.state).where(WebhookEvent.id.in_(ids))
                )
            ).all()
        )
        bad = await db.get(WebhookEvent, poison_id)
        assert bad is not None and "InvalidJid" in (bad.error or "")
        stored = set(
            await db.scalars(select(Message.wa_message_id).where(Message.session_id == sid))
        )
        tickets = await db.scalar(
            select(func.count())
            .select_from(Ticket)
            .where(Ticket.session_id == sid, Ticket.flow_state == FlowState.AWAITING_MENU_CHOICE)
        )
        seqs = list(
            await db.scalars(
                select(Event.seq).where(Event.company_id == t.company_id).order_by(Event.seq)
            )
        )
    assert states[poison_id] == WebhookEventState.FAILED
    assert all(states[i] == WebhookEventState.PROCESSED for i in ids if i != poison_id)
    # Each good customer: its message once, one ticket with the menu asked.
    assert {f"B-{i}" for i in range(8)} <= stored and "B-POISON" not in stored
    assert tickets == 8
    # Gapless, each once: the poison's rolled-back events took no number.
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert live.daemon.inbound.failed == 1
    # Counted as a rerun (bench ingest reports them); marked in the rerun, not alone.
    assert live.daemon.inbound.reruns >= 1 and live.daemon.inbound.alone == 0


async def test_a_redelivery_inside_a_batch_is_stored_once(live: Live) -> None:
    t = await live.tenant()
    sid = await seed.session(live, t.company_id)
    batches = _spy_batches(live)
    first = [seed.says(sid, f"+5511990001{i:03d}", f"R-{i}", "oi") for i in range(4)]
    await asyncio.gather(*(live.daemon.inbound.receive(sid, e) for e in first))
    # The same messages again, beside new ones: the batch's duplicate check must see them.
    again = [*first, *(seed.says(sid, f"+5511990002{i:03d}", f"N-{i}", "oi") for i in range(4))]
    await asyncio.gather(*(live.daemon.inbound.receive(sid, e) for e in again))
    assert max(len(b) for b in batches) > 1, batches
    async with live.kernel.read() as db:
        count = await db.scalar(
            select(func.count()).select_from(Message).where(Message.session_id == sid)
        )
        inbound = await db.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.session_id == sid, Message.wa_message_id.is_not(None))
            .where(Message.wa_message_id.like("R-%") | Message.wa_message_id.like("N-%"))
        )
        unread = list(await db.scalars(select(Ticket.unread_count).where(Ticket.session_id == sid)))
        failed = await db.scalar(
            select(func.count())
            .select_from(WebhookEvent)
            .where(
                WebhookEvent.session_id == sid, WebhookEvent.state != WebhookEventState.PROCESSED
            )
        )
    assert inbound == 8, count
    assert sorted(unread) == [1] * 8  # a redelivery counts nothing
    assert failed == 0


async def test_two_spellings_of_one_phone_in_one_batch_make_one_client(live: Live) -> None:
    t = await live.tenant()
    sid = await seed.session(live, t.company_id)
    batches = _spy_batches(live)
    careful = _spy_careful(live)
    # The same Brazilian mobile with and without the 9th digit: two sender keys, so
    # the same batch, and the second must find what the first created in it.
    events = [
        seed.says(sid, "+5511987654321", "S-1", "oi"),
        seed.says(sid, "+551187654321", "S-2", "oi de novo"),
        *(seed.says(sid, f"+5511990003{i:03d}", f"S-X{i}", "oi") for i in range(4)),
    ]
    await asyncio.gather(*(live.daemon.inbound.receive(sid, e) for e in events))
    assert max(len(b) for b in batches) > 1, batches
    async with live.kernel.read() as db:
        ticket_ids = set(
            await db.scalars(
                select(Message.ticket_id).where(Message.wa_message_id.in_(["S-1", "S-2"]))
            )
        )
        tickets = await db.scalar(
            select(func.count()).select_from(Ticket).where(Ticket.session_id == sid)
        )
        numbers = sorted(await db.scalars(select(Ticket.number).where(Ticket.session_id == sid)))
        counter = await db.scalar(
            select(Company.last_ticket_number).where(Company.id == t.company_id)
        )
        seqs = list(
            await db.scalars(
                select(Event.seq).where(Event.company_id == t.company_id).order_by(Event.seq)
            )
        )
        last_seq = await db.scalar(select(Company.last_event_seq).where(Company.id == t.company_id))
    # Event seqs too (on SQLite counted from the value the batch read: no gap, no reuse).
    assert seqs == list(range(1, len(seqs) + 1)) and last_seq == len(seqs) > 0
    assert len(ticket_ids) == 1 and None not in ticket_ids
    assert tickets == 5
    # The batch took a number for each of its six newcomers at once; the one it did not
    # use went back: numbers stay gapless.
    assert numbers == [1, 2, 3, 4, 5] and counter == 5
    assert careful and not any(careful)  # straight runs (the give-back went with them)


async def test_a_ticket_closed_between_batches_is_not_reused_open(live: Live) -> None:
    t = await live.tenant()
    sid = await seed.session(live, t.company_id)
    phones = [f"+5511990004{i:03d}" for i in range(4)]
    await asyncio.gather(
        *(
            live.daemon.inbound.receive(sid, seed.says(sid, p, f"C-{i}", "oi"))
            for i, p in enumerate(phones)
        )
    )
    async with live.kernel.tx() as db:  # an agent closes every ticket, long ago
        for ticket in await db.scalars(select(Ticket).where(Ticket.session_id == sid)):
            ticket.status = TicketStatus.CLOSED
            ticket.closed_at = datetime(2020, 1, 1, tzinfo=UTC)
    await asyncio.gather(
        *(
            live.daemon.inbound.receive(sid, seed.says(sid, p, f"C2-{i}", "de novo"))
            for i, p in enumerate(phones)
        )
    )
    async with live.kernel.read() as db:
        rows = (
            await db.execute(
                select(Message.wa_message_id, Ticket.status, Ticket.flow_state)
                .join(Ticket, Ticket.id == Message.ticket_id)
                .where(Message.wa_message_id.like("C2-%"))
            )
        ).all()
        total = await db.scalar(
            select(func.count()).select_from(Ticket).where(Ticket.session_id == sid)
        )
    # Each new message opened a new ticket (outside the reopen window) with the menu.
    assert len(rows) == 4
    assert all(s != TicketStatus.CLOSED and f == FlowState.AWAITING_MENU_CHOICE for _, s, f in rows)
    assert total == 8


async def test_recovery_batches_senders_and_keeps_each_ones_order(live: Live) -> None:
    t = await live.tenant()
    sid = await seed.session(live, t.company_id)
    batches = _spy_batches(live)
    inbound = live.daemon.inbound
    phones = [f"+5511990005{i:03d}" for i in range(6)]
    for step, text in enumerate(["oi", "1", "obrigado"]):  # stored, as a crash leaves them
        for i, p in enumerate(phones):
            assert await inbound.store(sid, seed.says(sid, p, f"V-{i}-{step}", text)) is not None
    assert await inbound.recover() == 18
    assert max(len(b) for b in batches) > 1, batches  # senders shared batches
    async with live.kernel.read() as db:
        routed = list(await db.scalars(select(Ticket.flow_state).where(Ticket.session_id == sid)))
        unread = list(await db.scalars(select(Ticket.unread_count).where(Ticket.session_id == sid)))
    # "oi" asked the menu, "1" answered it, in that order, for every sender.
    assert routed == [FlowState.ROUTED] * 6
    assert unread == [3] * 6
    assert await inbound.recover() == 0


async def test_a_reply_quoting_a_message_of_its_own_batch_links_to_it(live: Live) -> None:
    # A batch inserts its messages at its end: a quote of one of them (another sender's,
    # earlier in the same batch) must still find it.
    t = await live.tenant()
    sid = await seed.session(live, t.company_id)
    batches = _spy_batches(live)
    inbound = live.daemon.inbound
    quoting = seed.says(sid, "+5511990007002", "Q-2", "isso aqui").model_copy(
        update={"quoted_wa_message_id": "Q-1"}
    )
    rows = [
        await inbound.store(sid, e)  # stored, as a crash leaves them: recovery batches them
        for e in (seed.says(sid, "+5511990007001", "Q-1", "oi"), quoting)
    ]
    assert await inbound.recover() == 2
    assert batches[0] == rows, batches  # one batch, in that order
    async with live.kernel.read() as db:
        ids = dict(
            (
                await db.execute(
                    select(Message.wa_message_id, Message.id).where(Message.session_id == sid)
                )
            ).all()
        )
        quoted = await db.scalar(select(Message.quoted_message_id).where(Message.id == ids["Q-2"]))
    assert quoted == ids["Q-1"]


async def test_a_stored_body_whose_events_fail_together_is_split_not_stuck(live: Live) -> None:
    # A Cloud webhook body gives several events, applied under their senders' locks in
    # one transaction; when that fails for one of them, each is received on its own,
    # which takes its sender's lock again: that must not wait for itself.
    t = await live.tenant()
    sid = await seed.session(live, t.company_id)
    good = seed.says(sid, "+5511990007001", "SPLIT-GOOD")
    bad = seed.says(sid, "+5511990007002", "SPLIT-BAD", chat="not-a-jid")
    row_id = new_id()
    async with live.kernel.tx() as db:
        db.add(
            WebhookEvent(
                id=row_id,
                company_id=t.company_id,
                session_id=sid,
                engine=Engine.CLOUD,
                event_type="cloud.webhook",
                payload={},
                state=WebhookEventState.PENDING,
                received_at=utcnow(),
            )
        )
    inbound = live.daemon.inbound
    await asyncio.wait_for(inbound.process_events(row_id, t.company_id, [good, bad]), 30)
    async with live.kernel.read() as db:
        body = await db.get(WebhookEvent, row_id)
        assert body is not None and body.state == WebhookEventState.PROCESSED
        assert body.error == "split into one stored event per message"
        by_message = dict(
            (
                await db.execute(
                    select(WebhookEvent.dedupe_key, WebhookEvent.state).where(
                        WebhookEvent.id != row_id, WebhookEvent.session_id == sid
                    )
                )
            ).all()
        )
        stored = list(
            await db.scalars(select(Message.wa_message_id).where(Message.session_id == sid))
        )
    assert by_message == {
        "SPLIT-GOOD": WebhookEventState.PROCESSED,
        "SPLIT-BAD": WebhookEventState.FAILED,
    }
    assert "SPLIT-GOOD" in stored and "SPLIT-BAD" not in stored


async def test_a_race_lost_at_the_batchs_insert_is_rerun_carefully(
    live: Live, monkeypatch: Any
) -> None:
    """A unique violation in the straight run's insert (on PostgreSQL one statement for
    every table) rolls the batch back, its raw events with it: they are stored on their
    own, then the batch runs again (it now reads the winner's identity) and applies
    every event once."""
    if live.backend == "sqlite":
        pytest.skip("SQLite has one writer: no other transaction can win during a batch")
    t = await live.tenant()
    sid = await seed.session(live, t.company_id)
    batches = _spy_batches(live)
    careful = _spy_careful(live)
    phones = [f"+5511990003{i:03d}" for i in range(4)]
    racer = phones[2]
    real_insert = Held.insert
    raced: list[bool] = []

    async def insert(self: Held, db: Any) -> None:
        if not raced:
            raced.append(True)
            # Another transaction wins the newcomer's identity after the batch read it.
            async with live.kernel.tx() as other:
                await identity.find_or_create(other, t.company_id, Identity(phone=racer))
        await real_insert(self, db)

    monkeypatch.setattr(Held, "insert", insert)
    await live.daemon.inbound._company_of(sid)
    reruns = live.daemon.inbound.reruns
    events = [seed.says(sid, p, f"U-{i}", "oi") for i, p in enumerate(phones)]
    ids = await asyncio.gather(*(live.daemon.inbound.receive(sid, e) for e in events))
    assert raced and max(len(b) for b in batches) > 1, batches
    # The straight run failed at its insert and its batch was run again.
    assert live.daemon.inbound.reruns == reruns + 1 and len(careful) >= 2, careful
    async with live.kernel.read() as db:
        states = list(await db.scalars(select(WebhookEvent.state).where(WebhookEvent.id.in_(ids))))
        clients = list(
            await db.scalars(
                select(Client.id).where(Client.company_id == t.company_id, Client.phone == racer)
            )
        )
        stored = list(
            await db.scalars(select(Message.wa_message_id).where(Message.session_id == sid))
        )
        tickets = await db.scalar(
            select(func.count()).select_from(Ticket).where(Ticket.session_id == sid)
        )
    assert states == [WebhookEventState.PROCESSED] * 4
    assert len(clients) == 1  # the winner's client took the racer's message
    assert sorted(w for w in stored if w and w.startswith("U-")) == [f"U-{i}" for i in range(4)]
    assert tickets == 4


async def test_a_batch_whose_tickets_change_in_several_ways_runs_straight(live: Live) -> None:
    """Menu answers beside plain messages: the batch's ticket changes differ in their
    columns (several UPDATE parts of one table on PostgreSQL), and it still commits
    in one straight run, each change written."""
    t = await live.tenant()
    sid = await seed.session(live, t.company_id)
    phones = [f"+5511990004{i:03d}" for i in range(4)]
    await live.daemon.inbound._company_of(sid)
    first = [seed.says(sid, p, f"M-{i}", "oi") for i, p in enumerate(phones)]
    await asyncio.gather(*(live.daemon.inbound.receive(sid, e) for e in first))
    batches = _spy_batches(live)
    careful = _spy_careful(live)
    second = [
        *(seed.says(sid, p, f"M-A{i}", "1") for i, p in enumerate(phones[:2])),
        *(seed.says(sid, p, f"M-B{i}", "hm?") for i, p in enumerate(phones[2:])),
    ]
    await asyncio.gather(*(live.daemon.inbound.receive(sid, e) for e in second))
    assert max(len(b) for b in batches) > 1, batches
    assert careful and not any(careful)
    async with live.kernel.read() as db:
        tickets = list(await db.scalars(select(Ticket).where(Ticket.session_id == sid)))
    assert len(tickets) == 4
    assert sorted(t.unread_count for t in tickets) == [2, 2, 2, 2]
    routed = [t for t in tickets if t.department_id is not None]
    assert len(routed) == 2
