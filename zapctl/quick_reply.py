"""`zapctl quick-reply ...`: canned answers agents expand by typing /shortcut."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated, Any

import typer

from zapctl.errors import CliError, ExitCode
from zapctl.options import CompanyOpt, as_uuid
from zapctl.output import dump, emit, table

if TYPE_CHECKING:
    from shared.client import ZapClient
    from shared.protocol.catalog import QuickReplyOut

app = typer.Typer(
    help="Quick replies: canned answers typed as /shortcut.",
    no_args_is_help=True,
)

COLUMNS = [("shortcut", "SHORTCUT"), ("department", "DEPARTMENT"), ("body", "BODY"), ("id", "ID")]
BODY_PREVIEW = 60

ReplyArg = Annotated[
    str,
    typer.Argument(metavar="ID|/SHORTCUT", help="The reply's id, or its shortcut."),
]
DeptOpt = Annotated[
    str | None,
    typer.Option(
        "--dept", metavar="NAME_OR_ID", help="Only for this department (default: company-wide)."
    ),
]


async def resolve_reply(zap: ZapClient, ref: str) -> QuickReplyOut:
    """Find a quick reply by id or shortcut (a leading "/" optional); exit 3 if none."""
    uid = as_uuid(ref)
    if uid is not None:
        return await zap.get_quick_reply(uid)
    shortcut = ref.strip().removeprefix("/").lower()
    found = [r for r in await zap.list_quick_replies(q=shortcut) if r.shortcut == shortcut]
    if not found:
        raise CliError(f"no quick reply /{shortcut}", ExitCode.NOT_FOUND)
    if len(found) > 1:
        raise CliError(
            f"/{shortcut} exists in {len(found)} places (company-wide or per department): "
            "give the id (see: zapctl quick-reply list)",
            ExitCode.USAGE,
        )
    return found[0]


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= BODY_PREVIEW else flat[: BODY_PREVIEW - 1] + "…"


def _row(r: QuickReplyOut, names: dict[uuid.UUID, str]) -> dict[str, Any]:
    dept = names.get(r.department_id, str(r.department_id)) if r.department_id else "(all)"
    return {
        **r.model_dump(),
        "shortcut": f"/{r.shortcut}",
        "department": dept,
        "body": _preview(r.body),
    }


@app.command("add")
def add(
    ctx: typer.Context,
    shortcut: Annotated[str, typer.Argument(help="Shortcut: lower-case letters, digits, - or _.")],
    body: Annotated[str, typer.Argument(help="The text it expands to.")],
    dept: DeptOpt = None,
    company: CompanyOpt = None,
) -> None:
    """Add a quick reply (ADMIN), company-wide or for one department.

    Examples:

    \b
      zapctl quick-reply add ola "Olá! Como posso ajudar?"
      zapctl quick-reply add /boleto "Segue a segunda via do boleto." --dept financeiro
    """
    from shared.protocol.catalog import QuickReplyCreate
    from zapctl import api
    from zapctl.resolve import company_id_of, resolve_department

    fields: dict[str, Any] = {"shortcut": shortcut, "body": body}

    async def go(zap: ZapClient) -> QuickReplyOut:
        cid = await company_id_of(zap, company)
        if cid is not None:
            fields["company_id"] = cid
        if dept is not None:
            fields["department_id"] = (await resolve_department(zap, dept, cid)).id
        return await zap.create_quick_reply(QuickReplyCreate.model_construct(**fields))

    row = api.run(ctx, go)
    emit(ctx, dump(row), f"added quick reply /{row.shortcut}  id {row.id}")


@app.command("list")
def list_(
    ctx: typer.Context,
    q: Annotated[str | None, typer.Option("--q", help="Only shortcuts starting with this.")] = None,
    dept: Annotated[
        str | None,
        typer.Option("--dept", metavar="NAME_OR_ID", help="Only those usable in this department."),
    ] = None,
    company: CompanyOpt = None,
) -> None:
    """List the quick replies you may use, by shortcut.

    Examples:

    \b
      zapctl quick-reply list --q bol
      zapctl --json quick-reply list --dept financeiro
    """
    from zapctl import api
    from zapctl.resolve import company_id_of, resolve_department

    async def go(zap: ZapClient) -> tuple[list[QuickReplyOut], dict[uuid.UUID, str]]:
        cid = await company_id_of(zap, company)
        dep_id = (await resolve_department(zap, dept, cid)).id if dept else None
        rows = await zap.list_quick_replies(q=q, department_id=dep_id, company_id=cid)
        names = {d.id: d.name for d in await zap.list_departments(cid)} if rows else {}
        return rows, names

    rows, names = api.run(ctx, go)
    emit(ctx, dump(rows), table([_row(r, names) for r in rows], COLUMNS))


@app.command("update")
def update(
    ctx: typer.Context,
    ref: ReplyArg,
    body: Annotated[str | None, typer.Option("--body", help="New text.")] = None,
    shortcut: Annotated[str | None, typer.Option("--shortcut", help="New shortcut.")] = None,
    dept: Annotated[
        str | None,
        typer.Option(
            "--dept", metavar="NAME_OR_ID", help="Move it to this department ('none': all)."
        ),
    ] = None,
) -> None:
    """Change a quick reply (ADMIN); only what you give changes.

    Examples:

    \b
      zapctl quick-reply update /ola --body "Olá! Em que posso ajudar hoje?"
      zapctl quick-reply update 0190c0de-... --shortcut oi --dept none
    """
    from shared.protocol.catalog import QuickReplyUpdate
    from zapctl import api
    from zapctl.resolve import resolve_department

    fields: dict[str, Any] = {}
    if body is not None:
        fields["body"] = body
    if shortcut is not None:
        fields["shortcut"] = shortcut
    if not fields and dept is None:
        raise CliError("nothing to change: give --body, --shortcut or --dept", ExitCode.USAGE)

    async def go(zap: ZapClient) -> QuickReplyOut:
        target = await resolve_reply(zap, ref)
        if dept is not None:
            fields["department_id"] = (
                None
                if dept.strip().lower() == "none"
                else (await resolve_department(zap, dept, target.company_id)).id
            )
        return await zap.update_quick_reply(target.id, QuickReplyUpdate.model_construct(**fields))

    row = api.run(ctx, go)
    emit(ctx, dump(row), f"updated quick reply /{row.shortcut}")


@app.command("remove")
def remove(ctx: typer.Context, ref: ReplyArg) -> None:
    """Remove a quick reply (ADMIN).

    Examples:

    \b
      zapctl quick-reply remove /ola
      zapctl quick-reply remove 0190c0de-...
    """
    from zapctl import api

    async def go(zap: ZapClient) -> QuickReplyOut:
        target = await resolve_reply(zap, ref)
        await zap.delete_quick_reply(target.id)
        return target

    row = api.run(ctx, go)
    emit(ctx, {"id": str(row.id), "deleted": True}, f"removed quick reply /{row.shortcut}")
