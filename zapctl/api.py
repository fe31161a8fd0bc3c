"""Talking to zapd: one client per invocation, typed errors mapped to exit codes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import typer

from zapctl.errors import CliError, ExitCode
from zapctl.output import state

if TYPE_CHECKING:
    from shared.client import ZapClient
    from shared.protocol.auth import TokenPair
    from zapctl.config import CtlSettings

T = TypeVar("T")


def settings(ctx: typer.Context) -> CtlSettings:
    """Return zapctl's settings for this invocation (the --server flag wins)."""
    from zapctl.config import load

    root = ctx.find_root()
    cached = getattr(root, "_zap_settings", None)
    if cached is None:
        cached = load(server=state(ctx).server)
        root._zap_settings = cached  # type: ignore[attr-defined]
    return cached


# API fields whose zapctl flag is not simply `--field-name`.
_FLAG_OF_FIELD = {
    "company_id": "--company",
    "department_ids": "--dept",
    "department_id": "--dept",
    "default_department_id": "--dept",
    "max_concurrent_tickets": "--max-tickets",
    "menu_order": "--order",
    "category_id": "--category",
    "assignee_id": "--to",
}


def flag_of(loc: object) -> str:
    """Name the command-line flag of an API field location (`["body", "name"]` -> --name)."""
    parts = [p for p in loc if isinstance(p, str)] if isinstance(loc, list | tuple) else []
    field = parts[-1] if parts else "value"
    return _FLAG_OF_FIELD.get(field, "--" + field.replace("_", "-"))


def _usage(exc: Exception) -> CliError | None:
    """Turn the daemon's answer to a missing value into a usage error naming the flag."""
    from shared import client as c
    from shared.errors import ErrorCode

    if isinstance(exc, c.BadRequest) and exc.code == ErrorCode.COMPANY_REQUIRED:
        return CliError(
            "missing --company: a global admin must say which company (name, id or CNPJ)",
            ExitCode.USAGE,
        )
    if isinstance(exc, c.ValidationError) and exc.details:
        missing = [flag_of(d.get("loc")) for d in exc.details if d.get("type") == "missing"]
        if missing:
            return CliError(f"missing {', '.join(dict.fromkeys(missing))}", ExitCode.USAGE)
    return None


def _error(exc: Exception, server: str) -> CliError:
    from shared import client as c
    from shared.errors import ErrorCode

    if isinstance(exc, c.DaemonUnreachable):
        return CliError(f"cannot reach zapd at {server} — is it running?", ExitCode.UNREACHABLE)
    if isinstance(exc, c.RequestTimeout):
        return CliError(str(exc), ExitCode.TIMEOUT)
    if isinstance(exc, c.Unauthorized):
        hint = " (run: zapctl login)" if exc.code == ErrorCode.UNAUTHORIZED else ""
        return CliError(f"{exc.message}{hint}", ExitCode.UNAUTHORIZED)
    if isinstance(exc, c.Forbidden):
        return CliError(exc.message, ExitCode.UNAUTHORIZED)
    if isinstance(exc, c.NotFound):
        return CliError(exc.message, ExitCode.NOT_FOUND)
    usage = _usage(exc)
    if usage is not None:
        return usage
    if isinstance(exc, c.PayloadTooLarge):
        return CliError(f"too large for zapd at {server}: {exc.message}; nothing was stored")
    if isinstance(exc, c.ZapError):
        return CliError(getattr(exc, "message", str(exc)))
    return CliError(str(exc))


def run(ctx: typer.Context, action: Callable[[ZapClient], Awaitable[T]], *, auth: bool = True) -> T:
    """Run `action` with a client on the configured zapd; errors become one-line CLI errors."""
    from shared.client import ZapClient, ZapError
    from zapctl import credentials

    conf = settings(ctx)
    token = refresh = None
    if auth:
        if conf.token:
            token = conf.token
        else:
            stored = credentials.load(conf.server)
            if stored is None:
                raise CliError(
                    f"not logged in to {conf.server} (run: zapctl login)", ExitCode.UNAUTHORIZED
                )
            token, refresh = stored.access_token, stored.refresh_token

    async def keep(pair: TokenPair) -> None:
        old = credentials.load(conf.server)
        credentials.save(
            conf.server,
            credentials.Stored(pair.access_token, pair.refresh_token, old.email if old else None),
        )

    async def go() -> T:
        async with ZapClient(
            conf.server,
            token=token,
            refresh_token=refresh,
            timeout=conf.timeout,
            on_tokens=keep if refresh else None,
        ) as zap:
            return await action(zap)

    try:
        return asyncio.run(go())
    except ZapError as exc:
        raise _error(exc, conf.server) from None
