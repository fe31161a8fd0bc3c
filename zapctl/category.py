"""`zapctl category ...`: the categories a ticket is closed with (Resolvido, Sem retorno...)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from zapctl.errors import CliError, ExitCode
from zapctl.options import ActiveFilterOpt, CompanyOpt, YesOpt
from zapctl.output import by_company, confirm, dump, emit, table
from zapctl.resolve import company_id_of, names_if_mixed, resolve_category

if TYPE_CHECKING:
    from shared.client import ZapClient
    from shared.protocol.catalog import CategoryOut

app = typer.Typer(
    help="Closing categories: what a ticket was about, chosen when it is closed.",
    no_args_is_help=True,
)

COLUMNS = [("name", "NAME"), ("active", "ACTIVE"), ("description", "DESCRIPTION"), ("id", "ID")]

CategoryArg = Annotated[
    str, typer.Argument(metavar="NAME_OR_ID", help="The category's name or id.")
]
DescriptionOpt = Annotated[
    str | None, typer.Option("--description", help="What the category is for.")
]


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Category name.")],
    description: DescriptionOpt = None,
    company: CompanyOpt = None,
) -> None:
    """Add a closing category (ADMIN).

    Examples:

    \b
      zapctl category add Resolvido --description "Atendido e encerrado"
      zapctl --json category add "Sem retorno" --company "Padaria Pão Quente"
    """
    from shared.protocol.catalog import CategoryCreate
    from zapctl import api

    fields: dict[str, Any] = {"name": name}
    if description is not None:
        fields["description"] = description

    async def go(zap: ZapClient) -> CategoryOut:
        cid = await company_id_of(zap, company)
        if cid is not None:
            fields["company_id"] = cid
        return await zap.create_category(CategoryCreate.model_construct(**fields))

    row = api.run(ctx, go)
    emit(ctx, dump(row), f"added category {row.name}  id {row.id}")


@app.command("list")
def list_(ctx: typer.Context, active: ActiveFilterOpt = None, company: CompanyOpt = None) -> None:
    """List closing categories by name.

    Examples:

    \b
      zapctl category list
      zapctl --json category list --active
    """
    from zapctl import api

    async def go(zap: ZapClient) -> tuple[list[CategoryOut], dict[Any, str]]:
        cid = await company_id_of(zap, company)
        rows = await zap.list_categories(active=active, company_id=cid)
        return rows, await names_if_mixed(zap, rows)

    rows, companies = api.run(ctx, go)
    lines, columns = by_company([c.model_dump() for c in rows], rows, COLUMNS, companies)
    emit(ctx, dump(rows), table(lines, columns))


@app.command("update")
def update(
    ctx: typer.Context,
    ref: CategoryArg,
    name: Annotated[str | None, typer.Option("--name", help="New name.")] = None,
    description: DescriptionOpt = None,
    active: Annotated[
        bool | None,
        typer.Option("--active/--inactive", help="Offer it when closing tickets, or not."),
    ] = None,
    company: CompanyOpt = None,
) -> None:
    """Rename, describe, retire or bring back a closing category (ADMIN).

    Examples:

    \b
      zapctl category update resolvido --name "Resolvido no 1º contato"
      zapctl category update "Sem retorno" --inactive
    """
    from shared.protocol.catalog import CategoryUpdate
    from zapctl import api

    fields: dict[str, Any] = {}
    if name is not None:
        fields["name"] = name
    if description is not None:
        fields["description"] = description
    if active is not None:
        fields["active"] = active
    if not fields:
        raise CliError(
            "nothing to change: give --name, --description, --active or --inactive",
            ExitCode.USAGE,
        )

    async def go(zap: ZapClient) -> CategoryOut:
        target = await resolve_category(zap, ref, await company_id_of(zap, company))
        return await zap.update_category(target.id, CategoryUpdate.model_construct(**fields))

    row = api.run(ctx, go)
    emit(ctx, dump(row), f"updated category {row.name}" + ("" if row.active else " (inactive)"))


@app.command("remove")
def remove(
    ctx: typer.Context, ref: CategoryArg, yes: YesOpt = False, company: CompanyOpt = None
) -> None:
    """Remove a closing category (ADMIN); tickets closed with it keep their history.

    Examples:

    \b
      zapctl category remove "Sem retorno" --yes
      zapctl category remove 0190c0de-... --yes
    """
    from zapctl import api

    async def find(zap: ZapClient) -> CategoryOut:
        return await resolve_category(zap, ref, await company_id_of(zap, company))

    target = api.run(ctx, find)
    confirm(f"Remove category {target.name}?", yes)

    async def go(zap: ZapClient) -> None:
        await zap.delete_category(target.id)

    api.run(ctx, go)
    emit(ctx, {"id": str(target.id), "deleted": True}, f"removed category {target.name}")
