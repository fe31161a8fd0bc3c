"""The hot queries read through indexes, never a scan or a sort of a whole history.

A representative history is seeded fast (`tests.zapd.db.history`: two companies, ten
messages per client), the planner statistics refreshed the way zapd does it
(`zapd.db.stats`, on both backends), then the statements the hot paths
run are captured as they run and EXPLAINed on each backend:

- no full scan of a history table (clients, identities, chats, tickets, messages,
  events): PostgreSQL `Seq Scan`, SQLite `SCAN <table>`;
- the paged listings (clients, tickets, queues, a ticket's messages, the realtime
  replay) come in index order: no `Sort` node, no SQLite temp B-tree for ORDER BY.

The read paths are called through their services; the inbound pipeline's lookups
(returning customer, reopen window, duplicate message, chat) are spelled here as the
pipeline writes them, since its statements move with the batched ingest.

Size: `ZAP_TEST_PLAN_CLIENTS` clients (default 2,000: ~25k rows, seconds). On demand,
`ZAP_TEST_PLAN_CLIENTS=100000` is the 1M-message history; `ZAP_TEST_PLAN_REPORT=path`
appends each statement's plan and median time there (JSON lines).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.enums import Role, TicketStatus
from zapd.db import migrate, stats
from zapd.db.engine import read_only, session_factory
from zapd.db.models import Chat, Client, Event, Message, Ticket
from zapd.db.types import utcnow
from zapd.kernel.pagination import PageParams
from zapd.kernel.principal import Principal
from zapd.services.delivery.outbox_worker import CLAIM_BATCH, due_rows
from zapd.services.people import clients, identity
from zapd.services.people.identity import Identity
from zapd.services.tickets import queries
from zapd.services.tickets.queries import TicketFilter

from .history import MESSAGES_PER_CLIENT, Seeded, seed

CLIENTS = int(os.environ.get("ZAP_TEST_PLAN_CLIENTS", "2000"))
REPORT = os.environ.get("ZAP_TEST_PLAN_REPORT")
HISTORY = {"clients", "client_identities", "chats", "tickets", "messages", "events", "outbox"}

Captured = list[tuple[str, Any]]


class Capture:
    """Collect the SELECT statements an engine runs while active."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.statements: Captured = []

    def _on(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            self.statements.append((statement, parameters))

    def __enter__(self) -> Capture:
        event.listen(self.engine.sync_engine, "before_cursor_execute", self._on)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self.engine.sync_engine, "before_cursor_execute", self._on)


def _pg_nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    out = [node]
    for child in node.get("Plans", []):
        out += _pg_nodes(child)
    return out


async def _plan(conn: AsyncConnection, statement: str, parameters: Any) -> list[str]:
    """Return the plan as lines, and raise on what the rules above forbid."""
    if conn.dialect.name == "sqlite":
        rows = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
        return [str(r[3]) for r in rows.all()]
    rows = await conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters)
    raw = rows.scalar()
    plan = json.loads(raw) if isinstance(raw, str) else raw
    return [
        f"{n['Node Type']} {n.get('Index Name') or n.get('Relation Name') or ''}".strip()
        for n in _pg_nodes(plan[0]["Plan"])
    ]


def _violations(lines: list[str], *, ordered: bool) -> list[str]:
    bad = []
    for line in lines:
        m = re.match(r"(?:SCAN|Seq Scan) (\w+)", line)
        if m and m.group(1) in HISTORY:
            bad.append(f"full scan: {line}")
        if ordered and (line.startswith("Sort") or "TEMP B-TREE FOR ORDER BY" in line):
            bad.append(f"sort: {line}")
    return bad


async def _timed(engine: AsyncEngine, statement: str, parameters: Any) -> float:
    async with read_only(engine).connect() as conn:
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            (await conn.exec_driver_sql(statement, parameters)).all()
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


@pytest.fixture
async def history(backend: Any) -> Any:
    engine = backend.engine()
    try:
        await migrate.upgrade(engine)
        t0 = time.perf_counter()
        seeded = await seed(engine, CLIENTS)
        t1 = time.perf_counter()
        analyzed = set(await stats.refresh(engine))
        t2 = time.perf_counter()
        assert await stats.refresh(engine) == []  # fresh now: nothing to redo
        t3 = time.perf_counter()
        history_tables = {"clients", "client_identities", "tickets", "messages"}
        if engine.dialect.name == "sqlite":
            assert history_tables <= analyzed
        else:  # zapd's refresh, or autovacuum if it came by first: statistics either way
            async with engine.connect() as conn:
                with_stats = {
                    str(t)
                    for (t,) in (
                        await conn.exec_driver_sql(
                            "SELECT DISTINCT tablename FROM pg_stats "
                            "WHERE schemaname = current_schema()"
                        )
                    ).all()
                }
            assert history_tables <= with_stats
        if REPORT:
            line = {
                "backend": engine.dialect.name,
                "clients": CLIENTS,
                "seed_s": round(t1 - t0, 1),
                "analyze_s": round(t2 - t1, 3),
                "stats_check_s": round(t3 - t2, 3),
            }
            with Path(REPORT).open("a", encoding="utf-8") as f:  # noqa: ASYNC230 - test report
                f.write(json.dumps(line) + "\n")
        yield engine, seeded
    finally:
        await engine.dispose()


Call = Callable[[Any], Awaitable[Any]]
QUEUE_BY_DEPARTMENT = ("ix_tickets_company_id_department_id_status_id",)
QUEUE_BY_ASSIGNEE = ("ix_tickets_company_id_assignee_id_status_id",)
IDENTITY_BY_VALUE = ("ix_client_identities_company_id_value",)
EVENTS_BY_SEQ = ("uq_events_company_id_seq", "sqlite_autoindex_events_")


def _hot_paths(s: Seeded) -> dict[str, tuple[bool, tuple[str, ...], Call]]:
    """name -> (a paged listing: no sort, the index its main statement must use, the call)."""
    admin = Principal(user_id=s.admin_id, company_id=s.company_id, role=Role.ADMIN, name="a")
    agent = Principal(
        user_id=s.agent_id,
        company_id=s.company_id,
        role=Role.AGENT,
        name="g",
        department_ids=frozenset({s.department_ids[0]}),
    )
    mid = len(s.phones) // 2
    phone, client_id, ticket_id = s.phones[mid], s.client_ids[mid], s.ticket_ids[mid]
    who = Identity(phone=phone, lid=f"{uuid.uuid4().int % 10**15}@lid")
    page = PageParams()

    async def attach(db: Any) -> Any:
        return await identity.attach(db, await db.get(Client, client_id), who)

    async def clients_page2(db: Any) -> Any:
        _, cursor = await clients.list_(db, admin, page)
        return await clients.list_(db, admin, PageParams(cursor=cursor))

    def run(stmt: Any) -> Callable[[Any], Awaitable[Any]]:
        async def go(db: Any) -> Any:
            return (await db.execute(stmt)).all()

        return go

    async def claim(db: Any) -> Any:  # the outbox worker's two queries, in turn
        return [
            (await db.execute(query.limit(CLAIM_BATCH))).all()
            for query in due_rows(utcnow(), skip_sessions=[], skip_rows=[])
        ]

    closed = TicketStatus.CLOSED
    return {
        "identity lookup (find)": (False, (), lambda db: identity.find_ids(db, who, s.company_id)),
        "identity lookup by value (attach)": (False, IDENTITY_BY_VALUE, attach),
        "clients listing": (True, (), lambda db: clients.list_(db, admin, page)),
        "clients listing, next page": (True, (), clients_page2),
        "tickets listing (supervisor)": (
            True,
            (),
            lambda db: queries.list_(db, admin, TicketFilter(), page),
        ),
        "department queue": (
            True,
            QUEUE_BY_DEPARTMENT,
            lambda db: queries.list_(
                db,
                agent,
                TicketFilter(statuses=(TicketStatus.PENDING,), department_id=s.department_ids[0]),
                page,
            ),
        ),
        "my open tickets": (
            True,
            QUEUE_BY_ASSIGNEE,
            lambda db: queries.list_(
                db, agent, TicketFilter(statuses=(TicketStatus.OPEN,), assignee="me"), page
            ),
        ),
        "tickets listing (agent)": (
            False,
            (),
            lambda db: queries.list_(db, agent, TicketFilter(), page),
        ),
        "ticket messages": (
            True,
            ("ix_messages_ticket_id_id",),
            lambda db: queries.messages(db, admin, ticket_id, page),
        ),
        # A range of seqs on the index; PostgreSQL may sort the few rows of the range.
        "realtime replay": (
            False,
            EVENTS_BY_SEQ,
            run(
                select(Event.company_id, Event.seq, Event.type, Event.data)
                .where(
                    Event.company_id == s.company_id,
                    Event.seq > s.last_seq - 300,
                    Event.seq <= s.last_seq,
                )
                .order_by(Event.seq)
                .limit(200)
            ),
        ),
        "returning customer": (
            False,
            (),
            run(
                select(Ticket.department_id, Ticket.closed_at)
                .where(
                    Ticket.client_id == client_id,
                    Ticket.id != ticket_id,
                    Ticket.status == closed,
                    Ticket.department_id.is_not(None),
                )
                .order_by(Ticket.closed_at.desc())
                .limit(1)
            ),
        ),
        "reopen window": (
            False,
            (),
            run(
                select(Ticket)
                .where(
                    Ticket.client_id == client_id,
                    Ticket.session_id == s.session_id,
                    Ticket.status == closed,
                )
                .order_by(Ticket.closed_at.desc())
                .limit(1)
            ),
        ),
        "open ticket": (
            False,
            (),
            run(
                select(Ticket).where(
                    Ticket.client_id == client_id,
                    Ticket.session_id == s.session_id,
                    Ticket.status != closed,
                )
            ),
        ),
        "duplicate message": (
            False,
            (),
            run(
                select(Message.id).where(
                    Message.company_id == s.company_id,
                    Message.session_id == s.session_id,
                    Message.wa_message_id == f"W0.{mid}.{MESSAGES_PER_CLIENT - 1}",
                )
            ),
        ),
        # The outbox worker's claim: due rows in index order (no sort of the queue, no
        # walk of every row ever queued), each checked for an older active row of its
        # chat without its history of messages.
        "outbox claim": (
            True,
            (),
            claim,
        ),
        "chat of a sender": (
            False,
            (),
            run(
                select(Chat).where(
                    Chat.company_id == s.company_id,
                    Chat.session_id == s.session_id,
                    Chat.wa_chat_id == f"{phone[1:]}@s.whatsapp.net",
                )
            ),
        ),
    }


async def test_hot_queries_use_indexes(history: Any) -> None:
    engine, seeded = history
    problems: dict[str, list[str]] = {}
    report: list[dict[str, Any]] = []
    for name, (ordered, index, call) in _hot_paths(seeded).items():
        with Capture(engine) as cap:
            async with session_factory(engine)() as db:
                result = await call(db)
                await db.rollback()
        if ordered and isinstance(result, tuple):  # a page: the history must fill it
            assert result[0], f"{name}: the seeded history has nothing to list"
        assert cap.statements, name
        ordered_ones = [st for st, _ in cap.statements if "ORDER BY" in st]
        main_statement = ordered_ones[0] if ordered_ones else cap.statements[-1][0]
        async with read_only(engine).connect() as conn:  # no write lock held on SQLite
            for statement, parameters in cap.statements:
                lines = await _plan(conn, statement, parameters)
                # Only the listing's own statement is paged; the lookups it makes of
                # the rows it found (by primary key) carry no ORDER BY.
                main = statement is main_statement
                bad = _violations(lines, ordered=ordered and "ORDER BY" in statement)
                if index and main and not any(i in line for i in index for line in lines):
                    bad.append(f"not through {' or '.join(index)}: {lines}")
                if bad:
                    problems.setdefault(name, []).extend([*bad, statement])
                if REPORT:
                    report.append(
                        {
                            "backend": engine.dialect.name,
                            "clients": CLIENTS,
                            "query": name,
                            "ms": round(await _timed(engine, statement, parameters), 3),
                            "plan": lines,
                        }
                    )
    if REPORT:
        with Path(REPORT).open("a", encoding="utf-8") as f:  # noqa: ASYNC230 - test report
            f.writelines(json.dumps(line) + "\n" for line in report)
    assert not problems, json.dumps(problems, indent=1)
