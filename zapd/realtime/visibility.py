"""Who may see which realtime event or ticket: one rule, in Python and in SQL.

- a global admin sees every company;
- ADMIN and SUPERVISOR (users or API tokens) see every event of their company;
- an AGENT sees events of their departments, events addressed to them, and
  company-wide events (neither a department nor a user).
"""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, and_, or_

from shared.enums import Role
from zapd.db.models import Event
from zapd.services.principal import Principal


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


def can_see_ticket(
    p: Principal,
    company_id: uuid.UUID,
    department_id: uuid.UUID | None,
    assignee_id: uuid.UUID | None,
) -> bool:
    """Tell whether `p` may see a ticket (agents: their departments' or assigned to them)."""
    if not p.owns(company_id):
        return False
    if p.at_least(Role.SUPERVISOR):
        return True
    if department_id is not None and department_id in p.department_ids:
        return True
    return assignee_id is not None and assignee_id == p.user_id
