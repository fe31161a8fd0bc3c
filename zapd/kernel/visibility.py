"""Who may see which ticket or realtime event: one rule, in Python and in SQL.

This is the single answer used by the REST services (a ticket the caller may not see
answers 404, like one that does not exist) and by the realtime stream (a principal
receives exactly the events about what REST lets it read):

- a global admin sees every company;
- ADMIN and SUPERVISOR (users or API tokens) see every ticket and event of their company;
- an AGENT sees the tickets of their departments plus the ones assigned to them; of
  events, those of their departments, those addressed to them, and company-wide ones
  (neither a department nor a user).

Each rule exists once as a predicate and once as the matching SQL condition; the two
must agree (tests/zapd/kernel/test_visibility.py checks them against each other).
"""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, and_, false, or_

from shared.enums import Role
from zapd.db.models import Event, Ticket
from zapd.kernel.principal import Principal


def can_see_ticket(
    p: Principal,
    company_id: uuid.UUID,
    department_id: uuid.UUID | None,
    assignee_id: uuid.UUID | None,
) -> bool:
    """Tell whether `p` may see a ticket with these columns."""
    if not p.owns(company_id):
        return False
    if p.at_least(Role.SUPERVISOR):
        return True
    if department_id is not None and department_id in p.department_ids:
        return True
    return assignee_id is not None and assignee_id == p.user_id


def can_see(p: Principal, ticket: Ticket) -> bool:
    """Tell whether `p` may see `ticket` (`can_see_ticket` on the row's columns)."""
    return can_see_ticket(p, ticket.company_id, ticket.department_id, ticket.assignee_id)


def ticket_clause(p: Principal) -> ColumnElement[bool] | None:
    """Return the SQL condition on `Ticket` for `can_see_ticket` within the caller's company.

    None means no limit inside the company (supervisors and up); the company itself is
    scoped by the caller (`Principal.company_filter`).
    """
    if p.at_least(Role.SUPERVISOR):
        return None
    conditions: list[ColumnElement[bool]] = []
    if p.department_ids:
        conditions.append(Ticket.department_id.in_(sorted(p.department_ids)))
    if p.user_id is not None:
        conditions.append(Ticket.assignee_id == p.user_id)
    return or_(*conditions) if conditions else false()


def can_see_event(
    p: Principal,
    company_id: uuid.UUID,
    department_id: uuid.UUID | None,
    user_id: uuid.UUID | None,
) -> bool:
    """Tell whether `p` may receive an event with these audience hints."""
    if not p.owns(company_id):
        return False
    if p.at_least(Role.SUPERVISOR):
        return True
    if department_id is None and user_id is None:
        return True
    if department_id is not None and department_id in p.department_ids:
        return True
    return user_id is not None and user_id == p.user_id


def event_clause(p: Principal) -> ColumnElement[bool] | None:
    """Return the SQL condition on `Event` for `can_see_event` (None: no limit in the company)."""
    if p.at_least(Role.SUPERVISOR):
        return None
    conds: list[ColumnElement[bool]] = [
        and_(Event.department_id.is_(None), Event.user_id.is_(None))
    ]
    if p.department_ids:
        conds.append(Event.department_id.in_(sorted(p.department_ids)))
    if p.user_id is not None:
        conds.append(Event.user_id == p.user_id)
    return or_(*conds)
