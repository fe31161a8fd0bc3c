"""The hub (bounded mailboxes, routing, closing) and the per-connection feed (replay,
gap filling, duplicates) against a real database on each backend."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.enums import Role
from shared.errors import CloseCode
from tests.zapd.db import factories
from zapd.db.engine import session_factory
from zapd.db.models import Event
from zapd.kernel import events
from zapd.kernel.principal import Principal
from zapd.kernel.visibility import can_see_event, can_see_ticket, event_clause
from zapd.realtime.hub import Hub, HubItem
from zapd.realtime.stream import EventFeed, Since, parse_since

CO_A = uuid.uuid4()
CO_B = uuid.uuid4()
LAB = uuid.uuid4()
SALES = uuid.uuid4()
AGENT_ID = uuid.uuid4()


def person(
    role: Role | None,
    company: uuid.UUID | None = CO_A,
    deps: frozenset[uuid.UUID] = frozenset(),
    user_id: uuid.UUID | None = None,
    token: bool = False,
) -> Principal:
    return Principal(
        user_id=None if token else (user_id or uuid.uuid4()),
        company_id=company,
        role=role,
        name="x",
        department_ids=deps,
        api_token_id=uuid.uuid4() if token else None,
    )


ROOT = person(None, company=None)
ADMIN = person(Role.ADMIN)
SUPERVISOR = person(Role.SUPERVISOR)
AGENT = person(Role.AGENT, deps=frozenset({LAB}), user_id=AGENT_ID)
AGENT_TOKEN = person(Role.AGENT, token=True)
OTHER_ADMIN = person(Role.ADMIN, company=CO_B)


def item(company: uuid.UUID, seq: int | None, **kw: Any) -> HubItem:
    return HubItem(company, seq, "t", {"seq": seq}, **kw)


def bare_hub(queue_size: int = 1000) -> Hub:
    return Hub(async_sessionmaker(), queue_size=queue_size)


# --------------------------------------------------------------------------- visibility


def test_event_visibility_by_role() -> None:
    cases = [
        # (department_id, user_id) -> who sees it among agent, token agent
        ((LAB, None), (True, False)),
        ((SALES, None), (False, False)),
        ((None, None), (True, True)),
        ((SALES, AGENT_ID), (True, False)),
        ((None, uuid.uuid4()), (False, False)),
    ]
    for (dep, user), (agent_sees, token_sees) in cases:
        assert can_see_event(AGENT, CO_A, dep, user) is agent_sees, (dep, user)
        assert can_see_event(AGENT_TOKEN, CO_A, dep, user) is token_sees, (dep, user)
        for p in (ROOT, ADMIN, SUPERVISOR, person(Role.SUPERVISOR, token=True)):
            assert can_see_event(p, CO_A, dep, user)
        assert not can_see_event(OTHER_ADMIN, CO_A, dep, user)
        assert can_see_event(ROOT, CO_B, dep, user)
    assert event_clause(ADMIN) is None and event_clause(ROOT) is None
    assert event_clause(AGENT) is not None


def test_ticket_visibility_by_role() -> None:
    assert can_see_ticket(AGENT, CO_A, LAB, None)
    assert can_see_ticket(AGENT, CO_A, SALES, AGENT_ID)  # assigned to them
    assert not can_see_ticket(AGENT, CO_A, SALES, None)
    assert not can_see_ticket(AGENT, CO_A, None, None)
    assert not can_see_ticket(AGENT, CO_B, LAB, AGENT_ID)
    assert can_see_ticket(SUPERVISOR, CO_A, None, None)
    assert not can_see_ticket(OTHER_ADMIN, CO_A, LAB, None)
    assert can_see_ticket(ROOT, CO_B, None, None)


# --------------------------------------------------------------------------- hub


async def test_mailbox_is_bounded_and_overflow_closes_only_that_subscriber() -> None:
    hub = bare_hub(queue_size=10)
    slow, fast = hub.subscribe(ADMIN), hub.subscribe(SUPERVISOR)
    for seq in range(1, 11):
        hub.dispatch(item(CO_A, seq))
    assert slow.pending == 10 and not slow.closing.is_set()
    assert [i.seq for i in fast.take()] == list(range(1, 11))
    hub.dispatch(item(CO_A, 11))
    assert slow.closing.is_set() and slow.close_code == CloseCode.SLOW_CONSUMER
    assert slow.pending == 0  # what it held is released at once
    assert hub.slow_consumers == 1
    for seq in range(12, 100):
        hub.dispatch(item(CO_A, seq))
        fast.take()
    assert slow.pending == 0 and hub.slow_consumers == 1
    assert not fast.closing.is_set()
    assert hub.dispatched == 99


async def test_routing_by_company_and_global_admins() -> None:
    hub = bare_hub()
    a, b, root = hub.subscribe(ADMIN), hub.subscribe(OTHER_ADMIN), hub.subscribe(ROOT)
    assert hub.client_count == 3
    hub.dispatch(item(CO_A, 1))
    hub.dispatch(item(CO_B, 1))
    assert [i.company_id for i in a.take()] == [CO_A]
    assert [i.company_id for i in b.take()] == [CO_B]
    assert [i.company_id for i in root.take()] == [CO_A, CO_B]
    agent = hub.subscribe(AGENT)
    n = hub.send_ephemeral(item(CO_A, None), lambda s: s.principal.role == Role.AGENT)
    assert n == 1 and agent.pending == 1 and a.pending == 0 and root.pending == 0
    for sub in (a, b, root, agent):
        hub.unsubscribe(sub)
        hub.unsubscribe(sub)  # idempotent
    assert hub.client_count == 0


async def test_close_user_where_and_all() -> None:
    hub = bare_hub()
    agent, agent_again, admin, other = (
        hub.subscribe(AGENT),
        hub.subscribe(AGENT),
        hub.subscribe(ADMIN),
        hub.subscribe(OTHER_ADMIN),
    )
    assert hub.close_user(AGENT_ID) == 2
    assert agent.close_code == agent_again.close_code == CloseCode.UNAUTHORIZED
    assert not admin.closing.is_set()
    hub.dispatch(item(CO_A, 1))
    assert agent.pending == 0 and admin.pending == 1
    assert hub.close_where(lambda p: p.company_id == CO_B, 4000, "company disabled") == 1
    assert other.close_code == 4000 and other.close_reason == "company disabled"
    await hub.close_all()
    assert admin.close_code == CloseCode.GOING_AWAY
    assert agent.close_code == CloseCode.UNAUTHORIZED  # the first reason wins
    assert not hub.accepting
    late = hub.subscribe(ADMIN)
    assert late.closing.is_set() and late.close_code == CloseCode.GOING_AWAY


async def test_wait_wakes_on_items_and_on_closing() -> None:
    hub = bare_hub()
    sub = hub.subscribe(ADMIN)
    waiter = asyncio.create_task(sub.wait())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    hub.dispatch(item(CO_A, 1))
    await asyncio.wait_for(waiter, 1)
    assert [i.seq for i in sub.take()] == [1]
    waiter = asyncio.create_task(sub.wait())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    hub.close_user(ADMIN.user_id or uuid.uuid4())
    await asyncio.wait_for(waiter, 1)


def test_envelope_text_is_the_wire_shape() -> None:
    it = HubItem(CO_A, 3, "ticket.update", {"id": "x", "nome": "Café"})
    assert it.envelope() == {
        "seq": 3,
        "type": "ticket.update",
        "company_id": str(CO_A),
        "data": {"id": "x", "nome": "Café"},
    }
    assert it.text == (
        '{"seq":3,"type":"ticket.update","company_id":"' + str(CO_A) + '",'
        '"data":{"id":"x","nome":"Café"}}'
    )
    assert it.text is it.text  # encoded once


# --------------------------------------------------------------------------- since


def test_parse_since() -> None:
    assert parse_since(None, ADMIN) == Since()
    assert parse_since("0", ADMIN) == Since(default=0)
    assert parse_since("42", ROOT) == Since(default=42)
    a, b = uuid.uuid4(), uuid.uuid4()
    got = parse_since(f"{a}:3, {b}:0", ROOT)
    assert got.for_company(a) == 3 and got.for_company(b) == 0
    assert got.for_company(uuid.uuid4()) is None  # unnamed: live only
    for bad in ("", "-1", "x", "1.0", "1e3", " ", "9" * 20, "١٢"):
        with pytest.raises(ValueError):
            parse_since(bad, ADMIN)
    for bad in (f"{a}:3", "x:1", f"{a}:-1", f"{a}", f"{a}:3,", f"{a}:"):
        with pytest.raises(ValueError):
            parse_since(bad, ROOT if bad != f"{a}:3" else ADMIN)


# --------------------------------------------------------------------------- feed


@dataclass
class World:
    sessions: async_sessionmaker[AsyncSession]
    hub: Hub
    a: uuid.UUID
    b: uuid.UUID

    async def commit(
        self, company: uuid.UUID, n: int = 1, **hints: uuid.UUID | None
    ) -> list[HubItem]:
        """Commit `n` events in one transaction without dispatching them."""
        async with self.sessions() as db, db.begin():
            evs = [await events.publish(db, company, "t", {"i": i}, **hints) for i in range(n)]
        return [HubItem.from_event(e) for e in evs]


@pytest.fixture
async def world(engine: AsyncEngine) -> AsyncIterator[World]:
    sessions = session_factory(engine)
    async with sessions() as db, db.begin():
        a, b = factories.company(), factories.company()
        db.add_all([a, b])
        await db.flush()
        ids = (a.id, b.id)
    yield World(sessions, Hub(sessions, queue_size=1000), *ids)


class Sink:
    """Collects what a feed sends."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.hellos: list[dict[str, Any]] = []

    async def __call__(self, text: str) -> None:
        doc = json.loads(text)
        (self.hellos if doc.get("type") == "hello" else self.frames).append(doc)

    def seqs(self, company: uuid.UUID | None = None) -> list[int]:
        return [
            f["seq"]
            for f in self.frames
            if f["seq"] is not None and (company is None or f["company_id"] == str(company))
        ]


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.005)


async def _run(feed: EventFeed, sink: Sink) -> asyncio.Task[None]:
    task = asyncio.create_task(feed.run(sink))
    await settle()
    return task


async def _stop(feed: EventFeed, task: asyncio.Task[None]) -> None:
    feed.sub.close(1000, "done")
    await asyncio.wait_for(task, 5)  # run() returns when the subscriber closes
    feed.close()


async def _until(pred: Any) -> None:
    for _ in range(500):
        if pred():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_out_of_order_hooks_are_filled_from_the_log(world: World) -> None:
    admin = person(Role.ADMIN, company=world.a)
    feed = await EventFeed.open(world.hub, admin)  # live only, head 0
    sink = Sink()
    task = await _run(feed, sink)
    items = await world.commit(world.a, 5)
    # Seq 3's hook runs first: 1 and 2 are read from the log, in order.
    world.hub.dispatch(items[2])
    await _until(lambda: len(sink.frames) == 3)
    world.hub.dispatch(items[0])
    world.hub.dispatch(items[1])
    world.hub.dispatch(items[4])
    await _until(lambda: len(sink.frames) == 5)
    world.hub.dispatch(items[3])
    world.hub.dispatch(items[4])  # a duplicate dispatch changes nothing either
    more = await world.commit(world.a, 1)
    world.hub.dispatch(more[0])
    await _until(lambda: len(sink.frames) == 6)
    await settle()
    assert sink.seqs() == [1, 2, 3, 4, 5, 6]
    assert feed.gap_fills == 2 and world.hub.gap_fills == 2
    await _stop(feed, task)
    assert world.hub.client_count == 0


async def test_a_batch_drained_at_once_is_put_in_order_without_the_log(world: World) -> None:
    admin = person(Role.ADMIN, company=world.a)
    feed = await EventFeed.open(world.hub, admin)
    sink = Sink()
    await feed.start(sink)
    items = await world.commit(world.a, 4)
    for i in (3, 1, 0, 2, 1):
        world.hub.dispatch(items[i])
    await feed.deliver(feed.sub.take(), sink)
    assert sink.seqs() == [1, 2, 3, 4] and feed.gap_fills == 0
    feed.close()


async def test_live_only_feed_keeps_an_event_committed_while_it_opened(world: World) -> None:
    admin = person(Role.ADMIN, company=world.a)
    await world.commit(world.a, 2)
    feed = await EventFeed.open(world.hub, admin)  # floor: head 2
    # Committed after the floor was read; its after-commit hook runs only after the
    # feed has read the head again (the race a late dispatch creates).
    late = await world.commit(world.a, 1)
    sink = Sink()
    task = await _run(feed, sink)
    assert sink.seqs() == [3]  # replayed from the log, not lost
    world.hub.dispatch(late[0])  # ... and the late hook is a duplicate
    nxt = await world.commit(world.a, 1)
    world.hub.dispatch(nxt[0])
    await _until(lambda: len(sink.frames) == 2)
    assert sink.seqs() == [3, 4]
    await _stop(feed, task)


async def test_replay_filters_in_sql_like_the_live_rule(world: World) -> None:
    agent = person(Role.AGENT, company=world.a, deps=frozenset({LAB}), user_id=AGENT_ID)
    rng = random.Random(3)
    options: list[dict[str, uuid.UUID | None]] = [
        {"department_id": LAB},
        {"department_id": SALES},
        {},
        {"user_id": AGENT_ID},
        {"department_id": SALES, "user_id": AGENT_ID},
        {"user_id": uuid.uuid4()},
    ]
    for _ in range(60):
        await world.commit(world.a, rng.randint(1, 3), **rng.choice(options))
    await world.commit(world.b, 5)
    async with world.sessions() as db:
        rows = (
            await db.scalars(select(Event).where(Event.company_id == world.a).order_by(Event.seq))
        ).all()
    expected = [
        r.seq for r in rows if can_see_event(agent, r.company_id, r.department_id, r.user_id)
    ]
    assert 0 < len(expected) < len(rows)
    for since in (0, 7, len(rows) - 1):
        feed = await EventFeed.open(world.hub, agent, Since(default=since))
        sink = Sink()
        await feed.start(sink)
        assert sink.seqs() == [s for s in expected if s > since]
        assert {f["company_id"] for f in sink.frames} <= {str(world.a)}
        feed.close()


async def test_replay_in_batches_larger_than_one_query(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zapd.realtime import stream

    monkeypatch.setattr(stream, "REPLAY_BATCH", 7)
    await world.commit(world.a, 30)
    feed = await EventFeed.open(world.hub, person(Role.ADMIN, company=world.a), Since(default=2))
    sink = Sink()
    await feed.start(sink)
    assert sink.seqs() == list(range(3, 31))
    assert feed.last[world.a] == 30
    feed.close()


async def test_global_admin_tracks_each_company(world: World) -> None:
    root = person(None, company=None)
    await world.commit(world.a, 2)
    await world.commit(world.b, 1)
    feed = await EventFeed.open(world.hub, root, Since(per_company={world.a: 1}))
    sink = Sink()
    task = await _run(feed, sink)
    assert [(f["company_id"], f["seq"]) for f in sink.frames] == [(str(world.a), 2)]
    a = await world.commit(world.a, 3)  # 3, 4, 5
    b = await world.commit(world.b, 2)  # 2, 3
    for it in (b[1], a[2], a[0], b[0], a[1]):
        world.hub.dispatch(it)
    await _until(lambda: len(sink.frames) == 6)
    await settle()
    assert sink.seqs(world.a) == [2, 3, 4, 5]
    assert sink.seqs(world.b) == [2, 3]  # b:1 was before this (live) connection
    await _stop(feed, task)


async def test_ephemeral_items_skip_seq_tracking(world: World) -> None:
    admin = person(Role.ADMIN, company=world.a)
    feed = await EventFeed.open(world.hub, admin)
    sink = Sink()
    task = await _run(feed, sink)
    world.hub.send_ephemeral(HubItem(world.a, None, "typing", {"x": 1}))
    world.hub.send_ephemeral(HubItem(world.b, None, "typing", {"x": 2}))  # another company
    items = await world.commit(world.a, 1)
    world.hub.dispatch(items[0])
    await _until(lambda: len(sink.frames) == 2)
    await settle()
    assert [(f["type"], f["seq"]) for f in sink.frames] == [("typing", None), ("t", 1)]
    await _stop(feed, task)
