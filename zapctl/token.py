"""`zapctl token ...`: API tokens for scripts and integrations (use with ZAP_TOKEN)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shared.enums import Role
from zapctl.errors import CliError, ExitCode
from zapctl.options import CompanyOpt, as_uuid, enum_option
from zapctl.output import dump, emit, table

if TYPE_CHECKING:
    from shared.client import ZapClient
    from shared.protocol.auth import ApiTokenCreated, ApiTokenOut

app = typer.Typer(
    help="API tokens for scripts (use one with ZAP_TOKEN=...).",
    no_args_is_help=True,
)

COLUMNS = [
    ("name", "NAME"),
    ("prefix", "PREFIX"),
    ("role", "ROLE"),
    ("state", "STATE"),
    ("expires_at", "EXPIRES"),
    ("last_used_at", "LAST USED"),
    ("id", "ID"),
]
_RELATIVE = re.compile(r"^(\d+)\s*([hdw])$")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def parse_expires(text: str, now: datetime | None = None) -> datetime:
    """Read --expires: ISO date or date-time (local unless it has an offset), or 30d/12h/2w."""
    now = now or datetime.now().astimezone()
    m = _RELATIVE.match(text.strip().lower())
    if m:
        return now + timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CliError(
            f"invalid --expires {text!r}: give an ISO date (2026-12-31), "
            "date-time (2026-12-31T18:00-03:00) or a span like 30d, 12h, 2w",
            ExitCode.USAGE,
        ) from None
    return when.astimezone() if when.tzinfo is None else when


def _when(value: datetime | None) -> str | None:
    return value.astimezone().isoformat(timespec="minutes") if value else None


def _row(t: ApiTokenOut) -> dict[str, Any]:
    now = datetime.now().astimezone()
    if t.revoked_at is not None:
        state = "revoked"
    elif t.expires_at is not None and t.expires_at <= now:
        state = "expired"
    else:
        state = "active"
    return {
        **t.model_dump(),
        "role": t.role.name.lower(),
        "state": state,
        "prefix": f"{t.prefix}…",
        "expires_at": _when(t.expires_at),
        "last_used_at": _when(t.last_used_at),
    }


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="What the token is for, e.g. 'erp-sync'.")],
    role: Annotated[
        Role, enum_option(Role, "--role", help="What the token may do.", default=Role.AGENT)
    ] = Role.AGENT,
    expires: Annotated[
        str | None,
        typer.Option(
            "--expires",
            metavar="ISO|SPAN",
            help="Expiry: 2026-12-31, 2026-12-31T18:00-03:00, or 30d/12h/2w (default: never).",
        ),
    ] = None,
    company: CompanyOpt = None,
) -> None:
    """Create an API token (ADMIN); its secret is printed once, only now.

    Examples:

    \b
      zapctl token create erp-sync --role supervisor --expires 90d
      zapctl --json token create backup --expires 2026-12-31 | jq -r .token
    """
    from shared.protocol.auth import ApiTokenCreate
    from zapctl import api
    from zapctl.resolve import company_id_of

    fields: dict[str, Any] = {"name": name, "role": role}
    if expires is not None:
        fields["expires_at"] = parse_expires(expires)

    async def go(zap: ZapClient) -> ApiTokenCreated:
        cid = await company_id_of(zap, company)
        if cid is not None:
            fields["company_id"] = cid
        return await zap.create_api_token(ApiTokenCreate.model_construct(**fields))

    row = api.run(ctx, go)
    human = (
        f"created API token {row.name} ({row.role.name.lower()})  id {row.id}\n"
        f"secret (shown only now, keep it safe): {row.token}\n"
        f"use it with:  export ZAP_TOKEN={row.token}"
    )
    emit(ctx, dump(row), human)


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """List API tokens (ADMIN), never their secrets.

    Examples:

    \b
      zapctl token list
      zapctl --json token list
    """
    from zapctl import api

    rows = api.run(ctx, lambda zap: zap.list_api_tokens())
    emit(ctx, dump(rows), table([_row(t) for t in rows], COLUMNS))


async def resolve_token(zap: ZapClient, ref: str) -> ApiTokenOut:
    """Find an API token by id, or by name among the tokens not revoked; exit 3 if none."""
    uid = as_uuid(ref)
    rows = await zap.list_api_tokens()
    if uid is not None:
        found = [t for t in rows if t.id == uid]
    else:
        found = [t for t in rows if t.name == ref and t.revoked_at is None]
    if not found:
        raise CliError(f"no API token {ref!r}", ExitCode.NOT_FOUND)
    if len(found) > 1:
        raise CliError(f"{len(found)} tokens are named {ref!r}: give the id", ExitCode.USAGE)
    return found[0]


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="ID|NAME", help="The token's id or name.")],
) -> None:
    """Revoke an API token at once (ADMIN).

    Scripts using it stop working.

    Examples:

    \b
      zapctl token revoke 0190c0de-...
      zapctl token revoke erp-sync
    """
    from zapctl import api

    async def go(zap: ZapClient) -> ApiTokenOut:
        uid = as_uuid(ref)
        target_id = uid if uid is not None else (await resolve_token(zap, ref)).id
        return await zap.revoke_api_token(target_id)

    row = api.run(ctx, go)
    emit(ctx, dump(row), f"revoked API token {row.name} ({row.prefix}…)")
