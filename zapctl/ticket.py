"""`zapctl ticket ...`: the service queue — list, show, accept, assign, transfer, close."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from shared.enums import TicketStatus
from zapctl.errors import CliError, ExitCode
from zapctl.options import CompanyOpt, LimitOpt, enum_option
from zapctl.output import by_company, details, dump, emit, table, when
from zapctl.resolve import (
    PAGE,
    company_id_of,
    first,
    names_if_mixed,
    resolve_category,
    resolve_department,
    resolve_ticket,
    resolve_user,
)

if TYPE_CHECKING:
    from shared.client import ZapClient
    from shared.protocol.tickets import MessageOut, TicketOut

app = typer.Typer(
    help="Tickets: the service queue — list, show, accept, assign, transfer, close, reopen.",
    no_args_is_help=True,
)

TicketArg = Annotated[
    str, typer.Argument(help="Ticket id or number (#123 or 123).", metavar="TICKET")
]


# --------------------------------------------------------------------------- resolvers


# --------------------------------------------------------------------------- rendering


def _client(t: TicketOut) -> str:
    return t.client.name or t.client.profile_name or t.client.phone or "?"


def _row(t: TicketOut) -> dict[str, Any]:
    return {
        "number": f"#{t.number}",
        "status": t.status.name,
        "client": _client(t),
        "phone": t.client.phone,
        "department": t.department.name if t.department else None,
        "assignee": t.assignee.name if t.assignee else None,
        "unread": t.unread_count,
        "last": when(t.last_message_at),
    }


_COLUMNS = [
    ("number", "#"),
    ("status", "STATUS"),
    ("client", "CLIENT"),
    ("phone", "PHONE"),
    ("department", "DEPARTMENT"),
    ("assignee", "ASSIGNEE"),
    ("unread", "UNREAD"),
    ("last", "LAST MESSAGE"),
]


def _message_line(m: MessageOut) -> str:
    from shared.enums import MessageDirection, MessageType

    arrow = "←" if m.direction == MessageDirection.INBOUND else "→"
    kind = "note " if m.is_note else ""
    if m.type != MessageType.TEXT:
        kind += f"[{m.type.name.lower()}] "
    body = (m.body or "").replace("\n", " ⏎ ")
    stamp = when(m.wa_timestamp or m.created_at)
    return f"{stamp} {arrow} {kind}{body}  ({m.status.name.lower()})"


def _describe(t: TicketOut) -> str:
    return details(
        [
            ("ticket", f"#{t.number}  {t.id}"),
            ("status", f"{t.status.name} (flow {t.flow_state.name})"),
            ("priority", t.priority.name),
            ("client", f"{_client(t)}  {t.client.phone or ''}".strip()),
            ("department", t.department.name if t.department else None),
            ("assignee", t.assignee.name if t.assignee else None),
            ("session", t.session_id),
            ("unread", t.unread_count),
            ("created", when(t.created_at)),
            ("first response", when(t.first_response_at)),
            ("closed", when(t.closed_at)),
        ]
    )


def _done(ctx: typer.Context, t: TicketOut, what: str) -> None:
    who = f" with {t.assignee.name}" if t.assignee else ""
    dept = f" in {t.department.name}" if t.department else ""
    emit(ctx, dump(t), f"ticket #{t.number} {what}: {t.status.name}{dept}{who}")


# --------------------------------------------------------------------------- commands


def list_(
    ctx: typer.Context,
    status: Annotated[
        list[TicketStatus] | None,
        enum_option(TicketStatus, "--status", help="Only tickets in this state (repeatable)."),
    ] = None,
    dept: Annotated[
        str | None, typer.Option("--dept", help="Only this department (id, slug or name).")
    ] = None,
    mine: Annotated[bool, typer.Option("--mine", help="Only the tickets assigned to me.")] = False,
    q: Annotated[
        str | None, typer.Option("--q", help="Only clients whose name or phone contains this.")
    ] = None,
    limit: LimitOpt = 50,
    company: CompanyOpt = None,
) -> None:
    """List the tickets you can see, newest first.

    Examples:

      zapctl ticket list --status pending --dept suporte

      zapctl ticket list --mine

      zapctl --json ticket list --q 11987 --limit 500
    """
    from zapctl import api

    async def go(zap: ZapClient) -> tuple[list[TicketOut], dict[Any, str]]:
        company_id = await company_id_of(zap, company)
        dept_id = (await resolve_department(zap, dept, company_id)).id if dept else None
        walk = zap.iterate(
            zap.list_tickets,
            company_id=company_id,
            status=status or None,
            department_id=dept_id,
            assignee_id="me" if mine else None,
            q=q,
            limit=min(limit, PAGE),
        )
        rows = await first(walk, limit)
        return rows, await names_if_mixed(zap, rows)

    rows, companies = api.run(ctx, go)
    lines, columns = by_company([_row(t) for t in rows], rows, _COLUMNS, companies)
    emit(ctx, dump(rows), table(lines, columns, keys=("number",)))


def show(
    ctx: typer.Context,
    ticket: TicketArg,
    company: CompanyOpt = None,
    messages: Annotated[
        int, typer.Option("--messages", min=0, max=200, help="How many of the last messages.")
    ] = 10,
) -> None:
    """Show a ticket with its last messages (oldest first).

    Examples:

      zapctl ticket show '#42'

      zapctl --json ticket show 42 --messages 50
    """
    from zapctl import api

    async def go(zap: ZapClient) -> tuple[TicketOut, list[MessageOut]]:
        t = await resolve_ticket(zap, ticket, await company_id_of(zap, company))
        if not messages:
            return t, []
        page = await zap.list_ticket_messages(t.id, limit=messages, order="desc")
        return t, list(reversed(page.items))

    t, msgs = api.run(ctx, go)
    human = _describe(t)
    if msgs:
        human += "\n\n" + "\n".join(_message_line(m) for m in msgs)
    emit(ctx, dump(t) | {"messages": dump(msgs)}, human)


def accept(ctx: typer.Context, ticket: TicketArg, company: CompanyOpt = None) -> None:
    """Take a waiting ticket yourself (agents: from your departments' queues).

    Example: zapctl ticket accept '#42'
    """
    from zapctl import api

    async def go(zap: ZapClient) -> TicketOut:
        t = await resolve_ticket(zap, ticket, await company_id_of(zap, company))
        return await zap.accept_ticket(t.id)

    _done(ctx, api.run(ctx, go), "accepted")


def assign(
    ctx: typer.Context,
    ticket: TicketArg,
    user: Annotated[str, typer.Argument(help="The user's e-mail or id.", metavar="USER")],
    force: Annotated[
        bool, typer.Option("--force", help="Ignore the agent's concurrent-ticket limit.")
    ] = False,
    company: CompanyOpt = None,
) -> None:
    """Give a ticket to a member of the company (SUPERVISOR, ADMIN).

    Examples:

      zapctl ticket assign '#42' ana@acme.com.br

      zapctl ticket assign 42 ana@acme.com.br --force
    """
    from zapctl import api

    async def go(zap: ZapClient) -> TicketOut:
        from shared.protocol.tickets import TicketAssign

        t = await resolve_ticket(zap, ticket, await company_id_of(zap, company))
        user_id = (await resolve_user(zap, user)).id
        return await zap.assign_ticket(t.id, TicketAssign(user_id=user_id, force=force))

    _done(ctx, api.run(ctx, go), "assigned")


def transfer(
    ctx: typer.Context,
    ticket: TicketArg,
    company: CompanyOpt = None,
    dept: Annotated[
        str | None, typer.Option("--dept", help="Department to move it to (id, slug or name).")
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", help="User to give it to (e-mail or id).")
    ] = None,
    message: Annotated[
        str | None,
        typer.Option("--message", help="What the customer is told (instead of the standard)."),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", help="Do not tell the customer about the transfer.")
    ] = False,
) -> None:
    """Move a ticket to another department and/or person (its assignee, SUPERVISOR+).

    To a department only, it waits in that queue; with --to it is open with that person.

    Examples:

      zapctl ticket transfer '#42' --dept financeiro

      zapctl ticket transfer 42 --to bia@acme.com.br --message "Vou te ajudar"

      zapctl ticket transfer 42 --dept suporte --quiet
    """
    from zapctl import api

    if dept is None and to is None:
        raise CliError("give --dept, --to or both", ExitCode.USAGE)
    if quiet and message is not None:
        raise CliError(
            "--message is sent to the customer: it does not go with --quiet", ExitCode.USAGE
        )

    async def go(zap: ZapClient) -> TicketOut:
        from shared.protocol.tickets import TicketTransfer

        t = await resolve_ticket(zap, ticket, await company_id_of(zap, company))
        dept_id = (await resolve_department(zap, dept, t.company_id)).id if dept else None
        user_id = (await resolve_user(zap, to)).id if to else None
        body = TicketTransfer.model_construct(
            department_id=dept_id, user_id=user_id, message=message, notify_customer=not quiet
        )
        return await zap.transfer_ticket(t.id, body)

    _done(ctx, api.run(ctx, go), "transferred")


def close(
    ctx: typer.Context,
    ticket: TicketArg,
    company: CompanyOpt = None,
    category: Annotated[
        str | None, typer.Option("--category", help="Closing category (name or id).")
    ] = None,
    no_farewell: Annotated[
        bool, typer.Option("--no-farewell", help="Do not send the farewell message.")
    ] = False,
    message: Annotated[
        str | None, typer.Option("--message", help="A farewell instead of the standard one.")
    ] = None,
) -> None:
    """Close a ticket (its assignee, SUPERVISOR+), saying goodbye unless told not to.

    Examples:

      zapctl ticket close '#42' --category Resolvido

      zapctl ticket close 42 --no-farewell
    """
    from zapctl import api

    if no_farewell and message is not None:
        raise CliError(
            "--message is the farewell: it does not go with --no-farewell", ExitCode.USAGE
        )

    async def go(zap: ZapClient) -> TicketOut:
        from shared.protocol.tickets import TicketClose

        t = await resolve_ticket(zap, ticket, await company_id_of(zap, company))
        cat_id = (await resolve_category(zap, category, t.company_id)).id if category else None
        body = TicketClose.model_construct(
            category_id=cat_id, farewell=not no_farewell, message=message
        )
        return await zap.close_ticket(t.id, body)

    _done(ctx, api.run(ctx, go), "closed")


def reopen(ctx: typer.Context, ticket: TicketArg, company: CompanyOpt = None) -> None:
    """Reopen a closed ticket (SUPERVISOR+, or its last assignee).

    Example: zapctl ticket reopen '#42'
    """
    from zapctl import api

    async def go(zap: ZapClient) -> TicketOut:
        t = await resolve_ticket(zap, ticket, await company_id_of(zap, company))
        return await zap.reopen_ticket(t.id)

    _done(ctx, api.run(ctx, go), "reopened")


def read(ctx: typer.Context, ticket: TicketArg, company: CompanyOpt = None) -> None:
    """Mark a ticket and its chat as read (its unread count goes to zero).

    Example: zapctl ticket read '#42'
    """
    from zapctl import api

    async def go(zap: ZapClient) -> TicketOut:
        t = await resolve_ticket(zap, ticket, await company_id_of(zap, company))
        return await zap.mark_ticket_read(t.id)

    _done(ctx, api.run(ctx, go), "marked read")


app.command("list")(list_)
app.command("show")(show)
app.command("accept")(accept)
app.command("assign")(assign)
app.command("transfer")(transfer)
app.command("close")(close)
app.command("reopen")(reopen)
app.command("read")(read)
