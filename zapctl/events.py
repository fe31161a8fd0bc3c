"""`zapctl events ...`: stored raw inbound events (the webhook_events table)."""

from __future__ import annotations

import enum
import uuid
from typing import Annotated, Any

import typer

from zapctl.errors import CliError, ExitCode
from zapctl.export import CompanyOpt
from zapctl.offline import open_database
from zapctl.offline import run as run_offline
from zapctl.options import DbOpt, StateDirOpt
from zapctl.output import emit

app = typer.Typer(
    help="Raw inbound WhatsApp events stored by zapd (works on the database, without zapd).",
    no_args_is_help=True,
)


class ReplayState(enum.StrEnum):
    """Which stored events a replay picks."""

    failed = "failed"
    pending = "pending"


def _uuid(value: str, flag: str) -> uuid.UUID:
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        raise CliError(f"{flag}: {value!r} is not an id (UUID)", ExitCode.USAGE) from None


async def _replay(
    url: str,
    picked: ReplayState | None,
    ids: list[uuid.UUID],
    session_id: uuid.UUID | None,
    company_ref: str | None,
) -> dict[str, Any]:
    from sqlalchemy import select, update

    from shared.enums import WebhookEventState
    from zapd.connectors.events import load_event
    from zapd.db.engine import create_engine, session_factory
    from zapd.db.models import WaSession, WebhookEvent
    from zapd.errors import NotFound
    from zapd.kernel import audit
    from zapd.kernel.principal import CLI_ACTOR
    from zapd.services.compliance import exports

    engine = create_engine(url)
    try:
        async with session_factory(engine)() as db, db.begin():
            company = await exports.resolve_company(db, company_ref) if company_ref else None
            conditions: list[Any] = []
            if company is not None:
                conditions.append(WebhookEvent.company_id == company.id)
            if session_id is not None:
                session = await db.get(WaSession, session_id)
                if session is None or (company is not None and session.company_id != company.id):
                    raise NotFound(f"session {session_id} not found")
                conditions.append(WebhookEvent.session_id == session_id)
            if ids:
                found = set(
                    (
                        await db.scalars(
                            select(WebhookEvent.id).where(WebhookEvent.id.in_(ids), *conditions)
                        )
                    ).all()
                )
                missing = [str(i) for i in ids if i not in found]
                if missing:
                    raise NotFound(f"event {missing[0]} not found")
                conditions.append(WebhookEvent.id.in_(ids))
            state = WebhookEventState.FAILED if picked is None and not ids else None
            if picked is not None:
                state = WebhookEventState[picked.name.upper()]
            if state is not None:
                conditions.append(WebhookEvent.state == state)

            # Only events that still parse go back: zapd could not process the others.
            per_company: dict[uuid.UUID, int] = {}
            unreadable: list[str] = []
            last: uuid.UUID | None = None
            while True:
                stmt = select(WebhookEvent.id, WebhookEvent.company_id, WebhookEvent.payload)
                stmt = stmt.where(*conditions)
                if last is not None:
                    stmt = stmt.where(WebhookEvent.id > last)
                rows = (await db.execute(stmt.order_by(WebhookEvent.id).limit(500))).all()
                if not rows:
                    break
                last = rows[-1][0]
                good: list[uuid.UUID] = []
                for row_id, cid, payload in rows:
                    try:
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
                    CLI_ACTOR,
                    "webhook_event.replay",
                    "webhook_event",
                    ids[0] if len(ids) == 1 else None,
                    company_id=cid,
                    extra={
                        "by": "zapctl",
                        "count": count,
                        "state": state.name.lower() if state is not None else None,
                        "session_id": session_id,
                    },
                )
            return {
                "marked": sum(per_company.values()),
                "by_company": {str(k): v for k, v in per_company.items()},
                "unreadable": unreadable[:100],
                "unreadable_count": len(unreadable),
            }
    finally:
        await engine.dispose()


@app.command("replay")
def replay(
    ctx: typer.Context,
    state: Annotated[
        ReplayState | None,
        typer.Option(
            "--state",
            help="Pick events in this state (default: failed; with --id: any state).",
        ),
    ] = None,
    event_id: Annotated[
        list[str] | None,
        typer.Option("--id", help="Only this event id (repeatable)."),
    ] = None,
    session: Annotated[
        str | None, typer.Option("--session", help="Only events of this session id.")
    ] = None,
    company: CompanyOpt = None,
    state_dir: StateDirOpt = None,
    db: DbOpt = None,
) -> None:
    """Queue stored inbound events to be processed again (failed ones by default).

    zapd keeps every raw inbound event before processing it; one that failed keeps its
    error and stays FAILED. This marks the chosen events PENDING again (attempts kept,
    error cleared). It works offline, on the database: zapd processes pending events
    when it starts, so restart zapd afterwards (e.g. `systemctl restart zapd`).
    Processing is idempotent: a message already stored is not stored twice. Events whose
    stored payload no longer parses are skipped and listed.

    Examples:

      zapctl events replay                       # every failed event

      zapctl events replay --session 0190f3c2-...-a1 --state failed

      zapctl --json events replay --id 0190f3c2-7b1e-7c4d-9f00-5a1b2c3d4e5f
    """
    ids = [_uuid(v, "--id") for v in event_id or []]
    session_id = _uuid(session, "--session") if session else None
    _, url = open_database(state_dir, db)
    result = run_offline(_replay(url, state, ids, session_id, company))
    result["processed_at_next_start"] = True
    marked = result["marked"]
    human = (
        f"marked {marked} event{'s' if marked != 1 else ''} pending; zapd processes them at its "
        "next start (restart it: systemctl restart zapd)"
        if marked
        else "no events to replay; nothing changed"
    )
    skipped = result["unreadable_count"]
    if skipped:
        human += (
            f"\nskipped {skipped} event{'s' if skipped != 1 else ''} whose stored payload no "
            f"longer parses (left as they were): {', '.join(result['unreadable'][:5])}"
            + (" ..." if skipped > 5 else "")
        )
    emit(ctx, result, human)
