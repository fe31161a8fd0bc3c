"""Replaying stored raw inbound events: mark chosen events PENDING so zapd processes them again.

An operator tool (`zapctl events replay`, offline): events are picked by state (FAILED
by default; with explicit ids, any state), session and company; only events whose
stored payload still parses go back (the others are listed, left as they were);
attempts are kept and the error cleared. Processing stays idempotent: a message
already stored is never stored twice. One `webhook_event.replay` audit row per
company records how many were marked, in the same transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import WebhookEventState
from zapd.connectors.cloud.webhook import Envelope
from zapd.connectors.events import load_event
from zapd.db.models import WaSession, WebhookEvent
from zapd.errors import NotFound
from zapd.kernel import audit
from zapd.kernel.principal import Actor
from zapd.kernel.scoping import resolve_company
from zapd.services.conversations.cloud import RAW_EVENT_TYPE as CLOUD_RAW_EVENT

BATCH = 500


@dataclass(frozen=True)
class Pick:
    """Which stored events a replay takes (all given criteria must hold)."""

    state: WebhookEventState | None = None  # None: FAILED, or any state when ids are given
    ids: tuple[uuid.UUID, ...] = ()
    session_id: uuid.UUID | None = None
    company_ref: str | None = None  # a company id or CNPJ


async def _conditions(db: AsyncSession, pick: Pick) -> tuple[list[Any], WebhookEventState | None]:
    company = await resolve_company(db, pick.company_ref) if pick.company_ref else None
    conditions: list[Any] = []
    if company is not None:
        conditions.append(WebhookEvent.company_id == company.id)
    if pick.session_id is not None:
        session = await db.get(WaSession, pick.session_id)
        if session is None or (company is not None and session.company_id != company.id):
            raise NotFound(f"session {pick.session_id} not found")
        conditions.append(WebhookEvent.session_id == pick.session_id)
    if pick.ids:
        stmt = select(WebhookEvent.id).where(WebhookEvent.id.in_(pick.ids), *conditions)
        found = set((await db.scalars(stmt)).all())
        missing = [str(i) for i in pick.ids if i not in found]
        if missing:
            raise NotFound(f"event {missing[0]} not found")
        conditions.append(WebhookEvent.id.in_(pick.ids))
    state = pick.state
    if state is None and not pick.ids:
        state = WebhookEventState.FAILED
    if state is not None:
        conditions.append(WebhookEvent.state == state)
    return conditions, state


async def replay(db: AsyncSession, actor: Actor, pick: Pick) -> dict[str, Any]:
    """Mark the picked events PENDING in this transaction; return what was done."""
    conditions, state = await _conditions(db, pick)
    per_company: dict[uuid.UUID, int] = {}
    unreadable: list[str] = []
    last: uuid.UUID | None = None
    while True:
        stmt = select(
            WebhookEvent.id, WebhookEvent.company_id, WebhookEvent.payload, WebhookEvent.event_type
        )
        stmt = stmt.where(*conditions)
        if last is not None:
            stmt = stmt.where(WebhookEvent.id > last)
        rows = (await db.execute(stmt.order_by(WebhookEvent.id).limit(BATCH))).all()
        if not rows:
            break
        last = rows[-1][0]
        good: list[uuid.UUID] = []
        for row_id, cid, payload, event_type in rows:
            try:
                if event_type == CLOUD_RAW_EVENT:  # a Cloud API body, parsed when processed
                    Envelope.model_validate(payload)
                else:
                    load_event(payload)
            except Exception:
                unreadable.append(str(row_id))
                continue
            good.append(row_id)
            per_company[cid] = per_company.get(cid, 0) + 1
        if good:
            await db.execute(
                update(WebhookEvent)
                .where(WebhookEvent.id.in_(good))
                .values(state=WebhookEventState.PENDING, error=None, processed_at=None)
                .execution_options(synchronize_session=False)
            )
    for cid, count in per_company.items():
        audit.record(
            db,
            actor,
            "webhook_event.replay",
            "webhook_event",
            pick.ids[0] if len(pick.ids) == 1 else None,
            company_id=cid,
            extra={
                "by": actor.principal.name,
                "count": count,
                "state": state.name.lower() if state is not None else None,
                "session_id": pick.session_id,
            },
        )
    return {
        "marked": sum(per_company.values()),
        "by_company": {str(k): v for k, v in per_company.items()},
        "unreadable": unreadable[:100],
        "unreadable_count": len(unreadable),
    }
