"""The tail every admin write ends with: audit the change, then announce it.

A create, update or delete of a tenant's row (category, tag, department, quick reply,
session...) is recorded in the audit log (`<entity>.<action>`, with the before/after
snapshot diff) and published as one realtime event, both in the caller's transaction,
so either the change, its audit row and its event all commit or none does. The event's
data defaults to `{"id", "action"}`; callers with more to say pass `data`.
`patch_fields` is the head of every PATCH: the fields given, none of the required
ones set to null.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from zapd.errors import ValidationFailed
from zapd.kernel import audit, events
from zapd.kernel.principal import Actor

Snapshot = Callable[[Any], dict[str, Any]]
Action = Literal["create", "update", "delete"]


def patch_fields(
    body: BaseModel, *, not_null: tuple[str, ...] = (), exclude: set[str] | None = None
) -> dict[str, Any]:
    """Return the fields a PATCH body sets; `null` for one of `not_null` is a 422."""
    fields = body.model_dump(exclude_unset=True, exclude=exclude)
    for name in not_null:
        if name in fields and fields[name] is None:
            raise ValidationFailed(f"{name} cannot be null")
    return fields


async def record(
    db: AsyncSession,
    actor: Actor,
    action: Action,
    entity: str,
    row: Any,
    *,
    event: str | None,
    before: dict[str, Any] | None = None,
    snapshot: Snapshot = audit.snapshot,
    data: dict[str, Any] | None = None,
    department_id: uuid.UUID | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Audit `<entity>.<action>` on `row` and announce it as `event` (None: no event).

    create: `row` was added and flushed. update: `row` was changed and flushed; `before`
    is its snapshot from before the change. delete: `row` is deleted here (and flushed).
    """
    row_id, company_id = row.id, row.company_id
    after: dict[str, Any] | None = None
    if action == "delete":
        before = snapshot(row)
        await db.delete(row)
        await db.flush()
    else:
        after = snapshot(row)
    audit.record(
        db,
        actor,
        f"{entity}.{action}",
        entity,
        row_id,
        company_id=company_id,
        before=before,
        after=after,
        extra=extra,
    )
    if event is not None:
        payload = data if data is not None else {"id": row_id, "action": action}
        await events.publish(db, company_id, event, payload, department_id=department_id)
