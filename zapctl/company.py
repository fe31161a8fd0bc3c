"""`zapctl company ...`: tenants (global admins) and a company's own settings (its admin)."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from zapctl.errors import CliError, ExitCode
from zapctl.options import ActiveFilterOpt, QueryOpt, YesOpt
from zapctl.output import confirm, details, dump, emit, table
from zapctl.resolve import resolve_company

if TYPE_CHECKING:
    from shared.client import ZapClient
    from shared.protocol.companies import CompanyOut

app = typer.Typer(
    help="Companies (tenants) and their settings.",
    no_args_is_help=True,
)

COLUMNS = [
    ("id", "ID"),
    ("name", "NAME"),
    ("cnpj", "CNPJ"),
    ("active", "ACTIVE"),
    ("timezone", "TIMEZONE"),
    ("locale", "LOCALE"),
]


class LocaleChoice(StrEnum):
    """Locales a company may use."""

    pt_BR = "pt_BR"
    en = "en"


def check_cnpj(value: str) -> str:
    """Validate a CNPJ locally and return its 14 characters (exit 1 with the reason if invalid)."""
    from shared.cnpj import InvalidCNPJ, normalize_cnpj

    try:
        return normalize_cnpj(value)
    except InvalidCNPJ as exc:
        raise CliError(str(exc), ExitCode.ERROR) from None


def _row(c: CompanyOut) -> dict[str, Any]:
    return {**c.model_dump(), "cnpj": c.cnpj_formatted}


def _human(c: CompanyOut) -> str:
    s = c.settings
    return details(
        [
            ("id", c.id),
            ("name", c.name),
            ("cnpj", c.cnpj_formatted),
            ("active", c.active),
            ("timezone", c.timezone),
            ("locale", c.locale),
            ("agent name prefix", s.agent_name_prefix),
            ("reopen window", f"{s.reopen_window_minutes} min"),
            ("returning client days", s.returning_client_days),
            ("menu max attempts", s.menu_max_attempts),
            ("created", c.created_at.isoformat(timespec="seconds")),
            ("updated", c.updated_at.isoformat(timespec="seconds")),
        ]
    )


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Company name.")],
    cnpj: Annotated[
        str, typer.Option("--cnpj", help="CNPJ, formatted (11.222.333/0001-81) or digits.")
    ],
    timezone: Annotated[
        str | None, typer.Option("--timezone", help="IANA zone (default America/Sao_Paulo).")
    ] = None,
    locale: Annotated[
        LocaleChoice | None, typer.Option("--locale", help="Locale (default pt_BR).")
    ] = None,
) -> None:
    """Create a company (global admins). The CNPJ is checked before anything is sent.

    Examples:

    \b
      zapctl company create "Acme Ltda" --cnpj 11.222.333/0001-81
      zapctl --json company create Acme --cnpj 11222333000181 --timezone America/Manaus
    """
    from shared.protocol.companies import CompanyCreate
    from zapctl import api

    fields: dict[str, Any] = {"name": name, "cnpj": check_cnpj(cnpj)}
    if timezone is not None:
        fields["timezone"] = timezone
    if locale is not None:
        fields["locale"] = locale.value
    row = api.run(ctx, lambda zap: zap.create_company(CompanyCreate.model_construct(**fields)))
    emit(ctx, dump(row), f"created company {row.name} ({row.cnpj_formatted})  id {row.id}")


@app.command("list")
def list_(ctx: typer.Context, q: QueryOpt = None, active: ActiveFilterOpt = None) -> None:
    """List companies (every one for global admins, your own otherwise).

    --q matches the name or the CNPJ digits.

    Examples:

    \b
      zapctl company list --active
      zapctl --json company list --q acme
    """
    from zapctl import api

    async def go(zap: ZapClient) -> list[CompanyOut]:
        return [c async for c in zap.iterate(zap.list_companies, q=q, active=active)]

    rows = api.run(ctx, go)
    emit(ctx, dump(rows), table([_row(c) for c in rows], COLUMNS))


@app.command("show")
def show(
    ctx: typer.Context, ref: Annotated[str, typer.Argument(metavar="ID|CNPJ", help="Company.")]
) -> None:
    """Show a company and its settings, by id or CNPJ.

    Examples:

    \b
      zapctl company show 11.222.333/0001-81
      zapctl --json company show 0190c0de-...
    """
    from zapctl import api

    row = api.run(ctx, lambda zap: resolve_company(zap, ref))
    emit(ctx, dump(row), _human(row))


@app.command("update")
def update(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="ID|CNPJ", help="Company.")],
    name: Annotated[str | None, typer.Option("--name", help="New name.")] = None,
    cnpj: Annotated[str | None, typer.Option("--cnpj", help="New CNPJ (global admins).")] = None,
    timezone: Annotated[str | None, typer.Option("--timezone", help="IANA time zone.")] = None,
    locale: Annotated[LocaleChoice | None, typer.Option("--locale", help="Locale.")] = None,
    active: Annotated[
        bool | None,
        typer.Option("--active/--inactive", help="Enable or disable the company (global admins)."),
    ] = None,
    agent_prefix: Annotated[
        bool | None,
        typer.Option(
            "--agent-prefix/--no-agent-prefix",
            help="Prefix agents' messages with their name in bold.",
        ),
    ] = None,
    reopen_window: Annotated[
        int | None,
        typer.Option(
            "--reopen-window",
            metavar="MIN",
            help="A client writing within MIN minutes of a close reopens it (0: never).",
        ),
    ] = None,
    returning_days: Annotated[
        int | None,
        typer.Option(
            "--returning-days",
            metavar="D",
            help="A client back within D days is offered their last department (0: never).",
        ),
    ] = None,
    menu_attempts: Annotated[
        int | None,
        typer.Option(
            "--menu-attempts", metavar="N", help="Invalid menu answers before a human takes over."
        ),
    ] = None,
) -> None:
    """Change a company's name, zone, locale, state or settings.

    Only what you give changes.

    Examples:

    \b
      zapctl company update 11.222.333/0001-81 --name "Acme SA" --no-agent-prefix
      zapctl company update 0190c0de-... --reopen-window 30 --menu-attempts 2
      zapctl company update 11222333000181 --inactive
    """
    from shared.protocol.companies import CompanySettingsUpdate, CompanyUpdate
    from zapctl import api

    fields: dict[str, Any] = {}
    if name is not None:
        fields["name"] = name
    if cnpj is not None:
        fields["cnpj"] = check_cnpj(cnpj)
    if timezone is not None:
        fields["timezone"] = timezone
    if locale is not None:
        fields["locale"] = locale.value
    if active is not None:
        fields["active"] = active
    settings: dict[str, Any] = {
        k: v
        for k, v in (
            ("agent_name_prefix", agent_prefix),
            ("reopen_window_minutes", reopen_window),
            ("returning_client_days", returning_days),
            ("menu_max_attempts", menu_attempts),
        )
        if v is not None
    }
    if settings:
        fields["settings"] = CompanySettingsUpdate.model_construct(**settings)
    if not fields:
        raise CliError("nothing to change: give at least one option (see --help)", ExitCode.USAGE)

    async def go(zap: ZapClient) -> CompanyOut:
        target = await resolve_company(zap, ref)
        return await zap.update_company(target.id, CompanyUpdate.model_construct(**fields))

    row = api.run(ctx, go)
    emit(ctx, dump(row), f"updated company {row.name}\n" + _human(row))


@app.command("delete")
def delete(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="ID|CNPJ", help="Company.")],
    force: Annotated[
        bool, typer.Option("--force", help="Also delete its tickets and messages.")
    ] = False,
    yes: YesOpt = False,
) -> None:
    """Delete a company and everything it owns (global admins). Asks first unless --yes.

    Without --force a company that has tickets or messages is kept.

    Examples:

    \b
      zapctl company delete 11.222.333/0001-81
      zapctl company delete 0190c0de-... --force --yes
    """
    from zapctl import api

    if not yes and not sys.stdin.isatty():
        raise CliError("refusing without confirmation: pass --yes (no terminal)", ExitCode.USAGE)
    row = api.run(ctx, lambda zap: resolve_company(zap, ref))
    what = "everything it owns, tickets and messages included" if force else "everything it owns"
    confirm(f"Delete company {row.name} ({row.cnpj_formatted}) and {what}?", yes)
    api.run(ctx, lambda zap: zap.delete_company(row.id, force=force))
    emit(
        ctx,
        {"id": str(row.id), "deleted": True, "force": force},
        f"deleted company {row.name} ({row.cnpj_formatted})",
    )
