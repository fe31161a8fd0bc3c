"""`zapctl events ...`: stored raw inbound events (the webhook_events table)."""

from __future__ import annotations

import enum
import uuid
from typing import Annotated

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
    from shared.enums import WebhookEventState
    from zapd.offline import replay_events

    picked = WebhookEventState[state.name.upper()] if state is not None else None
    result = run_offline(replay_events(url, picked, ids, session_id, company))
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
