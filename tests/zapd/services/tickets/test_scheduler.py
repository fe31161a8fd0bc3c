"""The ticket scheduler on a live daemon: auto-assignment, reassignment, response timeouts.

The worker the daemon started is stopped first, and `tick(now)` is called by hand with
the clock each test needs; departments and presence are set over the API.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from shared.enums import (
    AutoAssignMode,
    FlowState,
    MessageDirection,
    MessageStatus,
    Presence,
    Role,
    TicketStatus,
)
from tests.zapd.api.conftest import Live, Tenant
from tests.zapd.api.conftest import live as live  # the fixture, shared
from tests.zapd.api.test_conversation import connected_session
from tests.zapd.api.test_lifecycle import (
    assignments,
    make_ticket,
    outbound,
    routed_ticket,
    set_user,
    ticket_row,
)
from zapd.db.models import Assignment, AuditLog, Event, Message, Ticket
from zapd.db.types import utcnow
from zapd.domain.tickets import REASON_ACCEPT, REASON_AUTO
from zapd.services.tickets.scheduler import Scheduler


async def scheduler(live: Live) -> Scheduler:
    """Return the daemon's scheduler, its own loop stopped (the test drives the clock)."""
    [sched] = [w for w in live.daemon.workers if isinstance(w, Scheduler)]
    await sched.stop()
    return sched


async def auto(t: Tenant, department_id: uuid.UUID, mode: AutoAssignMode, **kw: Any) -> None:
    r = await t.admin.patch(
        f"/api/v1/departments/{department_id}", json={"auto_assign": int(mode), **kw}
    )
    assert r.status_code == 200, r.text


async def online(client: httpx.AsyncClient, presence: Presence = Presence.ONLINE) -> None:
    r = await client.patch("/api/v1/auth/me", json={"presence": int(presence)})
    assert r.status_code == 200, r.text


async def lab_agents(live: Live, t: Tenant, n: int) -> list[tuple[uuid.UUID, httpx.AsyncClient]]:
    """Add `n` Laboratório agents, logged in."""
    out = []
    for i in range(n):
        email = f"auto{i}.{t.company_id.hex[:8]}@acme.com.br"
        uid = await live.add_user(t.company_id, email, Role.AGENT, f"Auto {i}", [t.lab_id])
        out.append((uid, (await live.login(email))[0]))
    return out


async def holders(live: Live, ids: list[uuid.UUID]) -> list[uuid.UUID | None]:
    return [(await ticket_row(live, i)).assignee_id for i in ids]


async def test_worker_ticks_on_its_own_and_stops(live: Live) -> None:
    [sched] = [w for w in live.daemon.workers if isinstance(w, Scheduler)]
    assert sched.interval == 1.0
    start = sched.ticks
    for _ in range(60):
        if sched.ticks > start:
            break
        await asyncio.sleep(0.05)
    assert sched.ticks > start
    await sched.stop()
    stopped_at = sched.ticks
    await asyncio.sleep(1.2)
    assert sched.ticks == stopped_at
    await sched.stop()  # twice is fine


async def test_round_robin_spreads_the_queue_over_online_agents(live: Live) -> None:
    t = await live.tenant()
    sched = await scheduler(live)
    await auto(t, t.lab_id, AutoAssignMode.ROUND_ROBIN)
    people = await lab_agents(live, t, 3)
    for _, client in people:
        await online(client)
    # The seeded Lab agent stays OFFLINE; a Comercial ticket is not Lab's business.
    queue = [await make_ticket(live, t) for _ in range(7)]
    elsewhere = await make_ticket(live, t, department_id=t.sales_id)
    in_menu = await make_ticket(live, t)
    async with live.kernel.tx() as db:
        await db.execute(
            update(Ticket)
            .where(Ticket.id == in_menu)
            .values(flow_state=FlowState.AWAITING_ROUTING_CONFIRMATION)
        )
    report = await sched.tick()
    assert report.assigned == 7
    got = await holders(live, queue)
    ids = [uid for uid, _ in people]
    assert set(got) == set(ids) and t.users["agent"] not in got
    assert Counter(got) == Counter({got[0]: 3, got[1]: 2, got[2]: 2})
    assert got[:3] == sorted(ids, key=str)  # nobody served yet: ties go by id
    assert got[3:6] == got[:3]  # the same rotation again
    for tid, holder in zip(queue, got, strict=True):
        row = await ticket_row(live, tid)
        assert row.status is TicketStatus.OPEN and row.flow_state is FlowState.DONE
        [a] = await assignments(live, tid)
        assert (a.user_id, a.reason, a.assigned_by_id) == (holder, "auto", None)
    assert (await ticket_row(live, elsewhere)).assignee_id is None
    assert (await ticket_row(live, in_menu)).assignee_id is None
    async with live.kernel.read() as db:
        audit = await db.scalar(select(AuditLog).where(AuditLog.entity_id == queue[0]))
        assert audit is not None and audit.action == "ticket.assign" and audit.user_id is None
        assert audit.data["reason"] == "auto"
        evs = (
            await db.scalars(select(Event).where(Event.type == "ticket.update").order_by(Event.seq))
        ).all()
    auto_evs = [e for e in evs if e.data.get("auto")]
    assert len(auto_evs) == 7 and all(e.department_id == t.lab_id for e in auto_evs)
    # Next round: whoever waited longest is first again (the one who got only two).
    more = [await make_ticket(live, t) for _ in range(3)]
    assert (await sched.tick()).assigned == 3
    assert await holders(live, more) == [got[1], got[2], got[0]]


async def test_round_robin_respects_capacity_and_offline_agents(live: Live) -> None:
    t = await live.tenant()
    sched = await scheduler(live)
    await auto(t, t.lab_id, AutoAssignMode.ROUND_ROBIN)
    (a, ca), (b, cb) = await lab_agents(live, t, 2)
    await online(ca)
    await online(cb)
    await set_user(live, a, max_concurrent_tickets=1)
    await set_user(live, b, max_concurrent_tickets=2)
    queue = [await make_ticket(live, t) for _ in range(5)]
    assert (await sched.tick()).assigned == 3
    got = await holders(live, queue)
    assert Counter(got) == Counter({a: 1, b: 2, None: 2})
    assert got[3:] == [None, None]  # the oldest are served first
    # Nobody has room: another tick changes nothing.
    assert (await sched.tick()).assigned == 0
    # a closes theirs: the next waiting ticket is a's.
    [a_ticket] = [q for q, h in zip(queue, got, strict=True) if h == a]
    assert (await ca.post(f"/api/v1/tickets/{a_ticket}/close", json={})).status_code == 200
    assert (await sched.tick()).assigned == 1
    assert (await ticket_row(live, queue[3])).assignee_id == a
    # b goes offline; a has no room for b's two: they go back to the queue.
    await online(cb, Presence.OFFLINE)
    report = await sched.tick()
    assert (report.reassigned, report.returned, report.assigned) == (0, 2, 0)
    # (a's closed ticket keeps a as its last assignee.)
    assert Counter(await holders(live, queue)) == Counter({None: 3, a: 2})


async def test_least_loaded_levels_open_tickets(live: Live) -> None:
    t = await live.tenant()
    sched = await scheduler(live)
    await auto(t, t.lab_id, AutoAssignMode.LEAST_LOADED)
    (a, ca), (b, cb), (c, cc) = await lab_agents(live, t, 3)
    for client in (ca, cb, cc):
        await online(client)
    # a already serves 3, b 1, c none.
    for _ in range(3):
        await make_ticket(live, t, status=TicketStatus.OPEN, assignee_id=a)
    await make_ticket(live, t, status=TicketStatus.OPEN, assignee_id=b)
    queue = [await make_ticket(live, t) for _ in range(5)]
    assert (await sched.tick()).assigned == 5
    got = await holders(live, queue)
    # c (0) → b and c tie at 1 → ... until all three hold 3.
    assert Counter(got) == Counter({c: 3, b: 2})
    assert got[0] == c
    more = await make_ticket(live, t)
    assert (await sched.tick()).assigned == 1
    # Everyone holds 3 now: the one assigned longest ago (a, never by the scheduler).
    assert (await ticket_row(live, more)).assignee_id == a


async def test_offline_assignee_loses_auto_assigned_ticket(live: Live) -> None:
    t = await live.tenant()
    sched = await scheduler(live)
    await auto(t, t.lab_id, AutoAssignMode.ROUND_ROBIN)
    (a, ca), (b, cb) = await lab_agents(live, t, 2)
    await online(ca)
    tid = await make_ticket(live, t)
    assert (await sched.tick()).assigned == 1
    assert (await ticket_row(live, tid)).assignee_id == a
    # a leaves: b is online, so the ticket goes to b.
    await online(cb)
    await online(ca, Presence.OFFLINE)
    report = await sched.tick()
    assert report.reassigned == 1
    row = await ticket_row(live, tid)
    assert row.assignee_id == b and row.status is TicketStatus.OPEN
    first, second = await assignments(live, tid)
    assert first.user_id == a and first.ended_at is not None
    assert (second.user_id, second.reason, second.ended_at) == (b, "reassign", None)
    # b leaves too, nobody else: back to the queue, waiting for whoever comes.
    await online(cb, Presence.OFFLINE)
    report = await sched.tick()
    assert report.returned == 1
    row = await ticket_row(live, tid)
    assert (row.status, row.assignee_id, row.flow_state) == (
        TicketStatus.PENDING,
        None,
        FlowState.ROUTED,
    )
    assert all(x.ended_at is not None for x in await assignments(live, tid))
    await online(ca)
    assert (await sched.tick()).assigned == 1
    assert (await ticket_row(live, tid)).assignee_id == a


async def test_silent_assignee_loses_auto_assigned_ticket(live: Live) -> None:
    t = await live.tenant()
    sched = await scheduler(live)
    assert sched.silence_limit == timedelta(seconds=600)
    await auto(t, t.lab_id, AutoAssignMode.ROUND_ROBIN)
    (a, ca), (b, cb) = await lab_agents(live, t, 2)
    await online(ca)
    answered, silent = await make_ticket(live, t), await make_ticket(live, t)
    now = utcnow()
    assert (await sched.tick(now)).assigned == 2
    assert await holders(live, [answered, silent]) == [a, a]
    # a answers the first customer, not the second.
    row = await ticket_row(live, answered)
    async with live.kernel.tx() as db:
        db.add(
            Message(
                company_id=t.company_id,
                session_id=row.session_id,
                chat_id=row.chat_id,
                ticket_id=answered,
                direction=MessageDirection.OUTBOUND,
                status=MessageStatus.SENT,
                body="Olá! Já vou verificar.",
                author_id=a,
            )
        )
    await online(cb)
    # Within the limit nothing moves.
    assert (await sched.tick(now + timedelta(seconds=590))).reassigned == 0
    report = await sched.tick(now + timedelta(seconds=601))
    assert report.reassigned == 1
    assert await holders(live, [answered, silent]) == [a, b]
    # b is silent too, but a is the only other choice and still has room.
    assert (await sched.tick(now + timedelta(seconds=1300))).reassigned == 1
    assert (await ticket_row(live, silent)).assignee_id == a
    # A ticket an agent took by hand stays theirs, however quiet they are.
    manual = await make_ticket(live, t)
    await online(cb, Presence.OFFLINE)
    assert (await ca.post(f"/api/v1/tickets/{manual}/accept")).status_code == 200
    await online(ca, Presence.OFFLINE)
    await sched.tick(now + timedelta(days=1))
    assert (await ticket_row(live, manual)).assignee_id == a


async def test_departments_with_auto_assign_off_are_left_alone(live: Live) -> None:
    t = await live.tenant()
    sched = await scheduler(live)
    await online(t.agent)
    tid = await make_ticket(live, t)
    report = await sched.tick()
    assert report.assigned == 0 and (await ticket_row(live, tid)).assignee_id is None
    await auto(t, t.lab_id, AutoAssignMode.LEAST_LOADED)
    assert (await sched.tick()).assigned == 1
    assert (await ticket_row(live, tid)).assignee_id == t.users["agent"]


# --------------------------------------------------------------------------- timeouts


async def escalations(live: Live, ticket_id: uuid.UUID) -> list[Event]:
    async with live.kernel.read() as db:
        rows = (
            await db.scalars(
                select(Event).where(Event.type == "ticket.escalated").order_by(Event.seq)
            )
        ).all()
    return [e for e in rows if e.data.get("id") == str(ticket_id)]


async def test_timeout_escalates_to_the_fallback_once_per_department(live: Live) -> None:
    t = await live.tenant()
    sched = await scheduler(live)
    r = await t.admin.patch(
        f"/api/v1/departments/{t.sales_id}",
        json={"response_timeout_seconds": 120, "fallback_department_id": str(t.lab_id)},
    )
    assert r.status_code == 200, r.text
    r = await t.admin.patch(
        f"/api/v1/departments/{t.lab_id}",
        json={"response_timeout_seconds": 300, "fallback_department_id": str(t.sales_id)},
    )
    assert r.status_code == 200, r.text
    sid = await connected_session(live, t)
    tid = await routed_ticket(live, t, sid, "+5511912345678", "2")  # Comercial
    row = await ticket_row(live, tid)
    assert row.timeout_at is not None and row.department_id == t.sales_id
    due = row.timeout_at
    # Not yet.
    assert (await sched.tick(due - timedelta(seconds=1))).escalated == 0
    report = await sched.tick(due + timedelta(seconds=1))
    assert (report.escalated, report.moved) == (1, 1)
    row = await ticket_row(live, tid)
    assert row.department_id == t.lab_id and row.status is TicketStatus.PENDING
    assert row.escalated_at == due + timedelta(seconds=1)
    assert row.timeout_at == due + timedelta(seconds=301)  # Laboratório's own deadline
    [ev] = await escalations(live, tid)
    assert ev.department_id == t.sales_id
    assert ev.data["to_department_id"] == str(t.lab_id)
    assert (await outbound(live, tid))[-1].body == (
        "Seu atendimento foi encaminhado para *Laboratório* para ser mais rápido."
    )
    # Laboratório's agent now sees it; a ticket.update told both queues.
    assert (await t.agent.get(f"/api/v1/tickets/{tid}")).status_code == 200
    async with live.kernel.read() as db:
        moves = [
            e
            for e in (await db.scalars(select(Event).where(Event.type == "ticket.update"))).all()
            if e.data.get("id") == str(tid) and e.data.get("action") == "escalate"
        ]
        audit = await db.scalar(select(AuditLog).where(AuditLog.action == "ticket.escalate"))
    assert {e.department_id for e in moves} == {t.sales_id, t.lab_id}
    assert audit is not None and audit.entity_id == tid
    # The same tick time again: nothing more.
    assert (await sched.tick(due + timedelta(seconds=2))).escalated == 0
    # Laboratório times out too: it escalates, but never back to Comercial.
    messages = len(await outbound(live, tid))
    report = await sched.tick(due + timedelta(seconds=302))
    assert (report.escalated, report.moved) == (1, 0)
    row = await ticket_row(live, tid)
    assert row.department_id == t.lab_id and row.timeout_at is None
    assert [e.department_id for e in await escalations(live, tid)] == [t.sales_id, t.lab_id]
    assert len(await outbound(live, tid)) == messages
    assert (await sched.tick(due + timedelta(days=1))).escalated == 0


async def test_accepted_ticket_does_not_escalate(live: Live) -> None:
    t = await live.tenant()
    sched = await scheduler(live)
    r = await t.admin.patch(
        f"/api/v1/departments/{t.lab_id}",
        json={"response_timeout_seconds": 60, "fallback_department_id": str(t.sales_id)},
    )
    assert r.status_code == 200
    sid = await connected_session(live, t)
    tid = await routed_ticket(live, t, sid, "+5511912345678", "1")
    assert (await ticket_row(live, tid)).timeout_at is not None
    assert (await t.agent.post(f"/api/v1/tickets/{tid}/accept")).status_code == 200
    assert (await sched.tick(utcnow() + timedelta(hours=1))).escalated == 0
    row = await ticket_row(live, tid)
    assert row.escalated_at is None and row.department_id == t.lab_id
    assert await escalations(live, tid) == []


async def test_timeout_without_fallback_only_alerts(live: Live) -> None:
    t = await live.tenant()
    sched = await scheduler(live)
    due = utcnow() - timedelta(seconds=5)
    tid = await make_ticket(live, t, timeout_at=due)
    report = await sched.tick()
    assert (report.escalated, report.moved) == (1, 0)
    row = await ticket_row(live, tid)
    assert row.escalated_at is not None and row.timeout_at is None
    assert row.department_id == t.lab_id and await outbound(live, tid) == []
    [ev] = await escalations(live, tid)
    assert ev.department_id == t.lab_id and ev.data["to_department_id"] is None


async def test_scheduler_and_agents_race_for_tickets(live: Live) -> None:
    """Ticks racing agents' accepts: every ticket ends with exactly one holder."""
    t = await live.tenant()
    sched = await scheduler(live)
    await auto(t, t.lab_id, AutoAssignMode.ROUND_ROBIN)
    people = await lab_agents(live, t, 2)
    for _, client in people:
        await online(client)
    for uid, _ in people:
        await set_user(live, uid, max_concurrent_tickets=10)
    queue = [await make_ticket(live, t) for _ in range(6)]
    answers = await asyncio.gather(
        sched.tick(),
        *[people[i % 2][1].post(f"/api/v1/tickets/{tid}/accept") for i, tid in enumerate(queue)],
    )
    report, *responses = answers
    assert all(r.status_code in (200, 409) for r in responses)
    reasons: Counter[str | None] = Counter()
    for i, (tid, r) in enumerate(zip(queue, responses, strict=True)):
        rows = [a for a in await assignments(live, tid) if a.ended_at is None]
        assert len(rows) == 1
        holder = (await ticket_row(live, tid)).assignee_id
        assert holder == rows[0].user_id
        reasons[rows[0].reason] += 1
        if r.status_code == 200:
            # The asker holds it: won by the accept, or handed to them by the tick just
            # before (an accept by its holder answers 200 and changes nothing).
            assert holder == people[i % 2][0]
    assert reasons[REASON_AUTO] == report.assigned  # each of the tick's wins counted once
    assert reasons[REASON_AUTO] + reasons[REASON_ACCEPT] == 6
    async with live.kernel.read() as db:
        assert (
            len((await db.scalars(select(Assignment).where(Assignment.ended_at.is_(None)))).all())
            == 6
        )
