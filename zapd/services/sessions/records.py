"""WhatsApp sessions: CRUD with tenancy, roles, audit, events, and the session log."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import LogLevel, Role, SessionStatus
from shared.errors import ErrorCode
from shared.protocol.events import SESSION_STATUS
from shared.protocol.sessions import MASK, SessionCreate, SessionUpdate, check_config, mask_config
from zapd.db.models import Company, Department, Message, SessionLog, WaSession
from zapd.errors import Conflict, NotFound, ValidationFailed
from zapd.kernel import audit, changes
from zapd.kernel.pagination import PageParams, paginate
from zapd.kernel.principal import Actor, Principal
from zapd.kernel.scoping import company_scoped, get_owned, referenced
from zapd.kernel.uniqueness import ensure_free, flush_unique
from zapd.secretbox import SecretBox
from zapd.security import new_token

WEBHOOK_SECRET_PREFIX = "whsec_"
# Never copied into the audit log (besides audit.SECRET_FIELDS); config is masked.
_UNAUDITED = ("qr_code", "pairing_code")


def _event(row: WaSession, action: str) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "status": row.status, "action": action}


def _snapshot(row: WaSession) -> dict[str, Any]:
    snap = audit.snapshot(row)
    for name in _UNAUDITED:
        snap.pop(name, None)
    snap["config"] = mask_config(snap.get("config"))
    snap["has_webhook_secret"] = bool(row.webhook_secret)
    return snap


async def get(db: AsyncSession, p: Principal, session_id: uuid.UUID) -> WaSession:
    """Return a session of the caller's company, or 404."""
    return await get_owned(db, p, WaSession, session_id, "session")


async def list_(
    db: AsyncSession,
    p: Principal,
    company_id: uuid.UUID | None = None,
    status: SessionStatus | None = None,
) -> list[WaSession]:
    """List sessions by name (every role may read them)."""
    stmt = select(WaSession).order_by(WaSession.company_id, WaSession.name)
    stmt = company_scoped(stmt, WaSession.company_id, p, company_id)
    if status is not None:
        stmt = stmt.where(WaSession.status == status)
    return list((await db.scalars(stmt)).all())


def _taken(name: str) -> Conflict:
    return Conflict(f"a session named {name!r} already exists")


async def _check_name(
    db: AsyncSession, company_id: uuid.UUID, name: str, self_id: uuid.UUID | None
) -> None:
    await ensure_free(
        db,
        WaSession.id,
        WaSession.company_id == company_id,
        WaSession.name == name,
        self_id=self_id,
        conflict=_taken(name),
    )


async def _check_department(
    db: AsyncSession, company_id: uuid.UUID, department_id: uuid.UUID | None
) -> None:
    if department_id is None:
        return
    await referenced(
        db,
        Department,
        department_id,
        company_id,
        field="default_department_id",
        what="department",
    )


def _merge_config(stored: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    merged = dict(stored)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif value == MASK:
            if key not in merged:
                raise ValidationFailed(f"config.{key}: give the value itself, not the mask")
        else:
            merged[key] = value
    return merged


async def create(
    db: AsyncSession, actor: Actor, body: SessionCreate, box: SecretBox | None = None
) -> tuple[WaSession, str | None]:
    """Create a session (ADMIN); return it and its webhook secret (shown only now).

    With `box`, the engine config's credentials are stored sealed (`zapd.secretbox`).
    """
    p = actor.principal
    p.require(Role.ADMIN)
    company_id = p.company_for_write(body.company_id)
    if await db.get(Company, company_id) is None:
        raise NotFound("company not found")
    await _check_name(db, company_id, body.name, None)
    await _check_department(db, company_id, body.default_department_id)
    secret = new_token(WEBHOOK_SECRET_PREFIX) if body.webhook_url else None
    row = WaSession(
        company_id=company_id,
        name=body.name,
        engine=body.engine,
        status=SessionStatus.DISCONNECTED,
        default_department_id=body.default_department_id,
        webhook_url=body.webhook_url,
        webhook_secret=secret,
        config=box.seal(body.config) if box is not None else body.config,
        flow_config=body.flow_config,
        active=body.active,
    )
    db.add(row)
    await flush_unique(db, _taken(row.name))
    await changes.record(
        db,
        actor,
        "create",
        "session",
        row,
        event=SESSION_STATUS,
        snapshot=_snapshot,
        data=_event(row, "create"),
    )
    return row, secret


async def update(
    db: AsyncSession,
    actor: Actor,
    session_id: uuid.UUID,
    body: SessionUpdate,
    box: SecretBox | None = None,
) -> tuple[WaSession, str | None]:
    """Change a session (ADMIN); return it and a webhook secret when a new one was minted."""
    p = actor.principal
    # Ownership first: a foreign id is 404 whatever the role.
    row = await get(db, p, session_id)
    p.require(Role.ADMIN)
    fields = changes.patch_fields(
        body,
        not_null=("name", "config", "flow_config", "active"),
        exclude={"rotate_webhook_secret"},
    )
    if "name" in fields:
        await _check_name(db, row.company_id, fields["name"], row.id)
    if "default_department_id" in fields:
        await _check_department(db, row.company_id, fields["default_department_id"])
    if "config" in fields:
        stored = box.unseal(row.config) if box is not None else row.config
        try:
            fields["config"] = check_config(row.engine, _merge_config(stored, fields["config"]))
        except ValueError as exc:
            raise ValidationFailed(str(exc)) from None
        if box is not None:
            fields["config"] = box.seal(fields["config"])
    before = _snapshot(row)
    new_secret: str | None = None
    if "webhook_url" in fields:
        if fields["webhook_url"] is None:
            fields["webhook_secret"] = None
        elif not row.webhook_secret:
            new_secret = new_token(WEBHOOK_SECRET_PREFIX)
    if body.rotate_webhook_secret:
        if not fields.get("webhook_url", row.webhook_url):
            raise ValidationFailed("rotate_webhook_secret: the session has no webhook_url")
        new_secret = new_token(WEBHOOK_SECRET_PREFIX)
    if new_secret is not None:
        fields["webhook_secret"] = new_secret
    for key, value in fields.items():
        setattr(row, key, value)
    await flush_unique(db, _taken(row.name))
    await changes.record(
        db,
        actor,
        "update",
        "session",
        row,
        before=before,
        event=None,  # status changes are announced by the session manager
        snapshot=_snapshot,
        extra={"webhook_secret_rotated": True}
        if new_secret and before["has_webhook_secret"]
        else None,
    )
    return row, new_secret


async def delete(
    db: AsyncSession, actor: Actor, session_id: uuid.UUID, *, force: bool = False
) -> None:
    """Remove a session (ADMIN); with message history only when `force` (it goes too)."""
    p = actor.principal
    # Ownership first: a foreign id is 404 whatever the role.
    row = await get(db, p, session_id)
    p.require(Role.ADMIN)
    messages = int(
        await db.scalar(
            select(func.count()).select_from(Message).where(Message.session_id == row.id)
        )
        or 0
    )
    if messages and not force:
        raise Conflict(
            f"the session has {messages} messages; pass force=true to delete it with its "
            "chats and messages",
            code=ErrorCode.SESSION_HAS_HISTORY,
        )
    await changes.record(
        db,
        actor,
        "delete",
        "session",
        row,
        event=SESSION_STATUS,
        snapshot=_snapshot,
        data=_event(row, "delete"),
        extra={"force": force, "messages_deleted": messages},
    )


async def logs(
    db: AsyncSession,
    p: Principal,
    session_id: uuid.UUID,
    page: PageParams,
    level: LogLevel | None = None,
) -> tuple[list[SessionLog], str | None]:
    """Page through a session's log (SUPERVISOR and up), optionally from `level` up."""
    # Ownership first: a foreign id is 404 whatever the role.
    row = await get(db, p, session_id)
    p.require(Role.SUPERVISOR)
    stmt = select(SessionLog).where(
        SessionLog.company_id == row.company_id, SessionLog.session_id == row.id
    )
    if level is not None:
        stmt = stmt.where(SessionLog.level >= level)
    return await paginate(db, stmt, SessionLog.id, page)
