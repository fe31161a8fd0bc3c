"""The retention purge: delete data older than a limit, in small transactions.

What goes (see `lgpd` for the per-table rules): tickets CLOSED before the cutoff with
their messages (and with them status history, assignments and outbox rows), raw inbound
events already processed or ignored, realtime events and session log lines older than
the cutoff. Failed raw events are kept. A dry run only counts. Each batch is its own
transaction, so the daemon is never blocked for long and a crash loses nothing but the
rest of the purge; one `retention.purge` audit row records the counts at the end.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from zapd.db.engine import read_only, session_factory
from zapd.kernel import audit
from zapd.kernel.principal import Actor
from zapd.kernel.scoping import resolve_company
from zapd.services.compliance import lgpd


async def purge(
    engine: AsyncEngine,
    actor: Actor,
    cutoff: datetime,
    *,
    company_ref: str | None,
    apply: bool,
    batch: int,
    label: str,
) -> dict[str, Any]:
    """Count (and with `apply`, delete) what the retention limit removes; return the figures."""
    async with session_factory(read_only(engine))() as db:
        company = await resolve_company(db, company_ref) if company_ref else None
        planned = await lgpd.purge_counts(db, cutoff, company.id if company else None)
    cid: uuid.UUID | None = company.id if company else None
    result: dict[str, Any] = {
        "older_than": label,
        "cutoff": cutoff.isoformat(),
        "company_id": str(cid) if cid else None,
        "applied": apply,
        "counts": planned,
    }
    if not apply:
        return result
    factory = session_factory(engine)
    reader = session_factory(read_only(engine))
    deleted = dict.fromkeys(("tickets", "messages", *lgpd.PURGE_ORDER[1:]), 0)
    while True:
        async with reader() as db:
            ticket_ids = await lgpd.old_ticket_ids(db, cutoff, cid, batch)
        if not ticket_ids:
            break
        while True:
            async with factory() as db, db.begin():
                n = await lgpd.purge_ticket_messages(db, ticket_ids, cutoff, batch)
            deleted["messages"] += n
            if n < batch:
                break
        async with factory() as db, db.begin():
            deleted["tickets"] += await lgpd.purge_tickets(db, ticket_ids, cutoff)
    for kind in lgpd.PURGE_ORDER[1:]:
        while True:
            async with factory() as db, db.begin():
                n = await lgpd.purge_simple(db, kind, cutoff, cid, batch)
            deleted[kind] += n
            if n < batch:
                break
    async with factory() as db, db.begin():
        audit.record(
            db,
            actor,
            "retention.purge",
            "retention",
            None,
            company_id=cid,
            extra={
                "by": actor.principal.name,
                "older_than": label,
                "cutoff": cutoff,
                "deleted": deleted,
            },
        )
    result["deleted"] = deleted
    return result
