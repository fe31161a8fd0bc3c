"""`zapctl login | logout | whoami`: the operator's own login to a zapd."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from zapctl.errors import CliError, ExitCode
from zapctl.output import ask, dump, emit, notice


def login(
    ctx: typer.Context,
    email: Annotated[str | None, typer.Option("--email", help="Your e-mail.")] = None,
    password: Annotated[
        str | None, typer.Option("--password", help="Your password; prompted when omitted.")
    ] = None,
) -> None:
    """Log in to zapd and keep the tokens (OS keyring, else a 0600 file).

    Examples:

      zapctl login --email admin@acme.com.br

      zapctl --server http://10.0.0.5:8765 login --email admin@acme.com.br --password '...'
    """
    from zapctl import api, credentials

    if not email or not password:
        if not sys.stdin.isatty():
            missing = "--email" if not email else "--password"
            raise CliError(f"missing {missing} (no terminal to prompt on)", ExitCode.USAGE)
        email = email or ask("E-mail")
        password = password or ask("Password", secret=True)
    server = api.settings(ctx).server
    pair = api.run(ctx, lambda zap: zap.login(email, password), auth=False)
    where = credentials.save(
        server, credentials.Stored(pair.access_token, pair.refresh_token, email)
    )
    credentials.remember_server(server)
    if where != "keyring":
        notice(f"no OS keyring available: tokens kept in {where} (mode 0600)")
    emit(ctx, {"server": server, "email": email, "stored_in": where}, f"logged in to {server}")


def logout(ctx: typer.Context) -> None:
    """End your login on zapd and forget the stored tokens.

    Example: zapctl logout
    """
    from zapctl import api, credentials

    server = api.settings(ctx).server
    stored = credentials.load(server)
    if stored is not None:
        try:
            api.run(ctx, lambda zap: zap.logout())
        except CliError as exc:
            if exc.code not in (ExitCode.UNAUTHORIZED, ExitCode.UNREACHABLE):
                raise
    had = credentials.forget(server)
    emit(ctx, {"server": server, "logged_out": had}, "logged out" if had else "was not logged in")


def whoami(ctx: typer.Context) -> None:
    """Show who you are on zapd.

    Example: zapctl --json whoami
    """
    from zapctl import api

    me = api.run(ctx, lambda zap: zap.me())
    role = me.role.name if me.role is not None else "GLOBAL ADMIN"
    emit(
        ctx,
        dump(me),
        f"{me.name} <{me.email or 'API token'}>  {role}"
        + (f"  company {me.company_id}" if me.company_id else ""),
    )
