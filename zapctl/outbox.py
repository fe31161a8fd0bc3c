"""`zapctl outbox ...`: what waits to go out, what died, and retrying or dropping it."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shared.enums import OutboxState
from zapctl.options import LimitOpt, YesOpt, enum_option
from zapctl.output import confirm, dump, emit, table, when
from zapctl.resolve import PAGE, first, resolve_session

if TYPE_CHECKING:
    from shared.client import ZapClient
    from shared.protocol.messages import OutboxOut

app = typer.Typer(
    help="The outbox: every outbound message's trip — list it, retry or drop dead letters.",
    no_args_is_help=True,
)

OutboxArg = Annotated[uuid.UUID, typer.Argument(help="Outbox entry id.", metavar="ID")]


def _row(e: OutboxOut) -> dict[str, Any]:
    return {
        "id": str(e.id),
        "state": e.state.name,
        "attempts": f"{e.attempts}/{e.max_attempts}",
        "to": e.to.split("@", 1)[0],
        "preview": (e.preview or "")[:40] or None,
        "error": e.last_error,
        "created": when(e.created_at),
    }


def list_(
    ctx: typer.Context,
    state: Annotated[
        OutboxState | None, enum_option(OutboxState, "--state", help="Only entries in this state.")
    ] = None,
    session: Annotated[
        str | None, typer.Option("--session", help="Only this session (id or name).")
    ] = None,
    limit: LimitOpt = 50,
) -> None:
    """List outbox entries, newest first (ADMIN).

    Examples:

      zapctl outbox list --state dead

      zapctl --json outbox list --session Atendimento --limit 500
    """
    from zapctl import api

    async def go(zap: ZapClient) -> list[OutboxOut]:
        session_id = (await resolve_session(zap, session)).id if session else None
        walk = zap.iterate(
            zap.list_outbox, state=state, session_id=session_id, limit=min(limit, PAGE)
        )
        return await first(walk, limit)

    rows = api.run(ctx, go)
    columns = [
        ("id", "ID"),
        ("state", "STATE"),
        ("attempts", "TRIES"),
        ("to", "TO"),
        ("preview", "TEXT"),
        ("error", "LAST ERROR"),
        ("created", "CREATED"),
    ]
    emit(ctx, dump(rows), table([_row(e) for e in rows], columns))


def retry(ctx: typer.Context, entry: OutboxArg) -> None:
    """Send a dead (or waiting) entry again now, its attempts reset (ADMIN).

    Example: zapctl outbox retry 0190a6c1-...
    """
    from zapctl import api

    e = api.run(ctx, lambda zap: zap.retry_outbox(entry))
    emit(ctx, dump(e), f"outbox entry {e.id} queued again: {e.state.name}")


def drop(ctx: typer.Context, entry: OutboxArg, yes: YesOpt = False) -> None:
    """Give up on a pending or dead entry: its message becomes FAILED (ADMIN).

    Examples:

      zapctl outbox drop 0190a6c1-...

      zapctl outbox drop 0190a6c1-... --yes
    """
    from zapctl import api

    found = api.run(ctx, lambda zap: zap.get_outbox(entry))
    confirm(f"Drop the message to {found.to.split('@', 1)[0]} ({found.state.name})?", yes)
    e = api.run(ctx, lambda zap: zap.drop_outbox(entry))
    emit(ctx, dump(e), f"outbox entry {e.id} dropped: {e.state.name}")


app.command("list")(list_)
app.command("retry")(retry)
app.command("drop")(drop)
