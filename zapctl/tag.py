"""`zapctl tag ...`: labels put on clients."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from zapctl.errors import CliError, ExitCode
from zapctl.options import CompanyOpt
from zapctl.output import by_company, dump, emit, table

if TYPE_CHECKING:
    from shared.client import ZapClient
    from shared.protocol.catalog import TagOut

app = typer.Typer(help="Tags: labels put on clients.", no_args_is_help=True)

COLUMNS = [("name", "NAME"), ("color", "COLOR"), ("id", "ID")]

TagArg = Annotated[str, typer.Argument(metavar="NAME_OR_ID", help="The tag's name or id.")]
ColorOpt = Annotated[
    str | None, typer.Option("--color", metavar="#RRGGBB", help="Color, e.g. #1e90ff.")
]


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Tag name.")],
    color: ColorOpt = None,
    company: CompanyOpt = None,
) -> None:
    """Add a tag (SUPERVISOR and up).

    Examples:

    \b
      zapctl tag add VIP --color "#ffd700"
      zapctl --json tag add inadimplente
    """
    from shared.protocol.catalog import TagCreate
    from zapctl import api
    from zapctl.resolve import company_id_of

    fields: dict[str, Any] = {"name": name}
    if color is not None:
        fields["color"] = color

    async def go(zap: ZapClient) -> TagOut:
        cid = await company_id_of(zap, company)
        if cid is not None:
            fields["company_id"] = cid
        return await zap.create_tag(TagCreate.model_construct(**fields))

    row = api.run(ctx, go)
    emit(ctx, dump(row), f"added tag {row.name}  id {row.id}")


@app.command("list")
def list_(ctx: typer.Context, company: CompanyOpt = None) -> None:
    """List tags by name.

    Examples:

    \b
      zapctl tag list
      zapctl --json tag list
    """
    from zapctl import api
    from zapctl.resolve import company_id_of

    async def go(zap: ZapClient) -> tuple[list[TagOut], dict[Any, str]]:
        from zapctl.resolve import names_if_mixed

        rows = await zap.list_tags(company_id=await company_id_of(zap, company))
        return rows, await names_if_mixed(zap, rows)

    rows, companies = api.run(ctx, go)
    lines, columns = by_company([t.model_dump() for t in rows], rows, COLUMNS, companies)
    emit(ctx, dump(rows), table(lines, columns))


@app.command("update")
def update(
    ctx: typer.Context,
    ref: TagArg,
    name: Annotated[str | None, typer.Option("--name", help="New name.")] = None,
    color: ColorOpt = None,
    company: CompanyOpt = None,
) -> None:
    """Rename or recolor a tag (SUPERVISOR and up).

    Example: zapctl tag update vip --name VIP --color "#ff0000"
    """
    from shared.protocol.catalog import TagUpdate
    from zapctl import api
    from zapctl.resolve import company_id_of, resolve_tag

    fields: dict[str, Any] = {}
    if name is not None:
        fields["name"] = name
    if color is not None:
        fields["color"] = color
    if not fields:
        raise CliError("nothing to change: give --name or --color", ExitCode.USAGE)

    async def go(zap: ZapClient) -> TagOut:
        target = await resolve_tag(zap, ref, await company_id_of(zap, company))
        return await zap.update_tag(target.id, TagUpdate.model_construct(**fields))

    row = api.run(ctx, go)
    emit(ctx, dump(row), f"updated tag {row.name}")


@app.command("remove")
def remove(ctx: typer.Context, ref: TagArg, company: CompanyOpt = None) -> None:
    """Remove a tag from everything it labels (SUPERVISOR and up).

    Examples:

    \b
      zapctl tag remove VIP
      zapctl tag remove 0190c0de-...
    """
    from zapctl import api
    from zapctl.resolve import company_id_of, resolve_tag

    async def go(zap: ZapClient) -> TagOut:
        target = await resolve_tag(zap, ref, await company_id_of(zap, company))
        await zap.delete_tag(target.id)
        return target

    row = api.run(ctx, go)
    emit(ctx, {"id": str(row.id), "deleted": True}, f"removed tag {row.name}")
