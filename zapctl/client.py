"""`zapctl client ...`: the customers — LGPD requests directly on the database (export,
erase), and list/show/tag/block through zapd (zapctl.client_api)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from zapctl import client_api
from zapctl.errors import CliError, ExitCode
from zapctl.export import CompanyOpt, Output
from zapctl.offline import open_database
from zapctl.offline import run as run_offline
from zapctl.options import DbOpt, StateDirOpt
from zapctl.output import confirm, emit, state

app = typer.Typer(
    help="Customers: list, show, tag, block; LGPD export and erase (those without zapd).",
    no_args_is_help=True,
)
app.command("list")(client_api.list_)
app.command("show")(client_api.show)
app.command("tag")(client_api.tag)
app.command("block")(client_api.block)

PhoneArg = Annotated[
    str,
    typer.Argument(
        help="The person's phone: any usual spelling, e.g. +55 11 91234-5678 or 11912345678 "
        "(a Brazilian mobile matches with or without the 9th digit).",
        metavar="PHONE",
        show_default=False,
    ),
]


async def _find(url: str, phone: str, company_ref: str | None, action: str) -> Any:
    from zapd.offline import (
        create_engine,
        lgpd,
        read_only,
        resolve_company,
        session_factory,
    )

    engine = read_only(create_engine(url))
    try:
        async with session_factory(engine)() as db:
            company = await resolve_company(db, company_ref) if company_ref else None
            client = await lgpd.find_client(db, phone, company)
            if action == "export":
                return await lgpd.export_document(db, client)
            h = await lgpd.holdings(db, client)
            return {
                "client_id": str(client.id),
                "company_id": str(client.company_id),
                "phone": client.phone,
                "name": client.name or client.profile_name,
                "messages": len(h.message_ids),
                "tickets": len(h.ticket_ids),
            }
    finally:
        await engine.dispose()


@app.command("export")
def export(
    ctx: typer.Context,
    phone: PhoneArg,
    company: CompanyOpt = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o", "--output", help="Write to FILE (mode 0600, atomically).", dir_okay=False
        ),
    ] = None,
    state_dir: StateDirOpt = None,
    db: DbOpt = None,
) -> None:
    """Print everything held about a person as one JSON document (LGPD access request).

    The document holds the client row, its identities (phone spellings, LID), tags,
    chats, tickets with their assignments, every message with its text, metadata of
    attached files, and the audit rows about the client, its tickets and messages.
    With -o the document goes to FILE and a summary is printed; with --json and no
    -o the document itself is the JSON output.

    Examples:

      zapctl client export +5511912345678 > titular.json

      zapctl client export "(11) 91234-5678" --company 11.222.333/0001-81 -o titular.json
    """
    _, url = open_database(state_dir, db)
    doc = run_offline(_find(url, phone, company, "export"))
    text = json.dumps(doc, ensure_ascii=False, indent=None if state(ctx).json else 2)
    if output is None:
        sys.stdout.write(text + "\n")
        return
    with Output(output) as fh:
        fh.write(text + "\n")
    emit(
        ctx,
        {
            "client_id": doc["client"]["id"],
            "file": str(output),
            "messages": len(doc["messages"]),
            "tickets": len(doc["tickets"]),
        },
        f"wrote the data of client {doc['client']['id']} ({len(doc['messages'])} messages, "
        f"{len(doc['tickets'])} tickets) to {output}",
    )


async def _erase(url: str, client_id: str, media_root: Path) -> tuple[dict[str, int], int]:
    import uuid

    from zapd.offline import Client, NotFound, create_engine, lgpd, read_only, session_factory

    engine = create_engine(url)
    try:
        factory = session_factory(engine)
        async with factory() as db, db.begin():
            client = await db.get(Client, uuid.UUID(client_id), with_for_update=True)
            if client is None or client.erased_at is not None:
                raise NotFound(f"client {client_id} not found")
            erased = await lgpd.erase(db, client)
        # Files go only after the commit, and only if still unused by any media row.
        async with session_factory(read_only(engine))() as db:
            keys = await lgpd.unused_keys(db, erased.files)
        return erased.counts, lgpd.delete_files(media_root, keys)
    finally:
        await engine.dispose()


@app.command("erase")
def erase(
    ctx: typer.Context,
    phone: PhoneArg,
    company: CompanyOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    state_dir: StateDirOpt = None,
    db: DbOpt = None,
) -> None:
    """Erase a person's personal data (LGPD deletion request), keeping anonymous counts.

    In one transaction: the client's name, push name, e-mail, notes, custom fields,
    phone, WhatsApp ids and LID are cleared (erased_at is set); identities and client
    tags are deleted; chats lose their name and WhatsApp id; every message of the
    person's chats and tickets loses its text, extra data and attachment (unsent ones
    are cancelled in the outbox); files no other message uses are deleted from disk;
    raw inbound events naming the person are deleted; audit rows quoting them are
    redacted. Tickets and messages stay, with their times and statuses, so reports do
    not change. An audit row `client.erase` records it. Cannot be undone: without
    --yes it asks on a terminal, and refuses (exit 2) when there is none.

    Examples:

      zapctl client erase +5511912345678

      zapctl --json client erase 11912345678 --company 11.222.333/0001-81 --yes
    """
    from zapd.offline import load_settings as load

    if not yes and not sys.stdin.isatty():
        raise CliError("refusing without confirmation: pass --yes (no terminal)", ExitCode.USAGE)
    sdir, url = open_database(state_dir, db)
    found = run_offline(_find(url, phone, company, "erase"))
    confirm(
        f"Erase the personal data of client {found['client_id']} "
        f"({found['phone'] or '-'}, {found['name'] or 'no name'}): "
        f"{found['messages']} messages, {found['tickets']} tickets? This cannot be undone",
        yes,
    )
    media_root = load(state_dir=sdir).media_dir
    counts, files = run_offline(_erase(url, found["client_id"], media_root))
    counts["files_deleted"] = files
    data = {"client_id": found["client_id"], "company_id": found["company_id"], **counts}
    emit(
        ctx,
        data,
        f"erased client {found['client_id']}: {counts['messages']} messages cleared, "
        f"{counts['chats']} chats, {counts['identities_deleted']} identities, "
        f"{counts['media_deleted']} media ({files} files), "
        f"{counts['raw_events_deleted']} raw events deleted, "
        f"{counts['audit_redacted']} audit rows redacted",
    )
