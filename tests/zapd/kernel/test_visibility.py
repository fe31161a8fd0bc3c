"""The one visibility rule: the Python predicates and the SQL conditions agree, row by row."""

from __future__ import annotations

import itertools
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import Role
from tests.zapd.db import factories as f
from zapd.db.models import Company, Department, Event, Ticket, User
from zapd.kernel.principal import Principal
from zapd.kernel.visibility import (
    can_see,
    can_see_event,
    can_see_ticket,
    event_clause,
    ticket_clause,
)


async def _world(db: AsyncSession) -> tuple[Company, list[Department], list[User]]:
    company = f.company()
    db.add(company)
    await db.flush()
    deps = [
        Department(company_id=company.id, name=n, slug=n, menu_order=i)
        for i, n in enumerate(("lab", "sales"), 1)
    ]
    users = [
        User(
            company_id=company.id,
            email=f"u{i}.{company.id}@x.br",
            name="U",
            role=Role.AGENT,
            password_hash="unused",
        )
        for i in range(2)
    ]
    db.add_all([*deps, *users])
    await db.flush()
    return company, deps, users


def _principals(company: Company, deps: list[Department], users: list[User]) -> list[Principal]:
    cid = company.id
    return [
        Principal(users[0].id, cid, Role.AGENT, "agent", department_ids=frozenset({deps[0].id})),
        Principal(users[1].id, cid, Role.AGENT, "agent without departments"),
        Principal(None, cid, Role.AGENT, "agent token", department_ids=frozenset({deps[1].id})),
        Principal(users[1].id, cid, Role.SUPERVISOR, "supervisor"),
        Principal(None, None, None, "global admin"),
        Principal(None, uuid.uuid4(), Role.ADMIN, "another company's admin"),
    ]


async def test_tickets_predicate_and_sql_agree(db: AsyncSession) -> None:
    company, deps, users = await _world(db)
    client = f.client(company)
    db.add(client)
    await db.flush()
    tickets = []
    for n, (dep, user) in enumerate(itertools.product([None, *deps], [None, *users]), 1):
        tickets.append(
            Ticket(
                company_id=company.id,
                number=n,
                client_id=client.id,
                department_id=dep.id if dep else None,
                assignee_id=user.id if user else None,
            )
        )
    db.add_all(tickets)
    await db.flush()
    for p in _principals(company, deps, users):
        stmt = select(Ticket.id).where(Ticket.company_id == company.id)
        if not p.owns(company.id):
            expected: set[uuid.UUID] = set()
        else:
            clause = ticket_clause(p)
            if clause is not None:
                stmt = stmt.where(clause)
            expected = set((await db.scalars(stmt)).all())
        seen = {t.id for t in tickets if can_see(p, t)}
        assert seen == expected, p.name
        for t in tickets:
            assert can_see_ticket(p, t.company_id, t.department_id, t.assignee_id) is (t.id in seen)


async def test_events_predicate_and_sql_agree(db: AsyncSession) -> None:
    company, deps, users = await _world(db)
    rows = []
    for seq, (dep, user) in enumerate(itertools.product([None, *deps], [None, *users]), 1):
        rows.append(
            Event(
                company_id=company.id,
                seq=seq,
                type="x.test",
                department_id=dep.id if dep else None,
                user_id=user.id if user else None,
                data={},
            )
        )
    db.add_all(rows)
    await db.flush()
    for p in _principals(company, deps, users):
        stmt = select(Event.id).where(Event.company_id == company.id)
        if not p.owns(company.id):
            expected: set[uuid.UUID] = set()
        else:
            clause = event_clause(p)
            if clause is not None:
                stmt = stmt.where(clause)
            expected = set((await db.scalars(stmt)).all())
        seen = {e.id for e in rows if can_see_event(p, e.company_id, e.department_id, e.user_id)}
        assert seen == expected, p.name
