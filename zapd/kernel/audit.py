"""The audit log: who changed what, written in the same transaction as the change."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from zapd.db.models import AuditLog
from zapd.kernel.principal import Actor

# Never copied into the audit log.
SECRET_FIELDS = frozenset({"password_hash", "token_hash", "webhook_secret", "password"})


_PLAIN = frozenset({str, int, float, bool})  # exactly these types: JSON holds them as they are


def jsonable(value: Any) -> Any:
    """Turn a column value into something JSON can hold."""
    if value is None or type(value) in _PLAIN:
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return value


def snapshot(row: Any, fields: list[str] | None = None) -> dict[str, Any]:
    """Return a row's columns as a JSON-safe dict, secrets left out."""
    names = fields or [c.key for c in row.__table__.columns]
    return {
        n: jsonable(getattr(row, n))
        for n in names
        if n not in SECRET_FIELDS and n not in ("created_at", "updated_at")
    }


def diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    """Return {field: [old, new]} for the fields that changed."""
    before, after = before or {}, after or {}
    return {
        k: [before.get(k), after.get(k)]
        for k in sorted(set(before) | set(after))
        if before.get(k) != after.get(k)
    }


def record(
    db: AsyncSession,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: uuid.UUID | None,
    *,
    company_id: uuid.UUID | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> AuditLog:
    """Add an audit row to the current transaction."""
    data: dict[str, Any] = {}
    if before is not None or after is not None:
        data["changes"] = diff(before, after)
    if extra:
        data.update(jsonable(extra))
    p = actor.principal
    row = AuditLog(
        company_id=company_id if company_id is not None else p.company_id,
        user_id=p.user_id,
        api_token_id=p.api_token_id,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        ip=actor.ip,
        data=data,
    )
    db.add(row)
    return row
