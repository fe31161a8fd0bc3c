"""`zapctl init`: set up a new instance (state dir, secret, schema, first admin)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from zapctl.errors import CliError, ExitCode
from zapctl.options import DbOpt, StateDirOpt
from zapctl.output import ask, emit


def _ask(value: str | None, flag: str, prompt: str, *, secret: bool = False) -> str:
    if value:
        return value
    if not sys.stdin.isatty():
        raise CliError(f"missing {flag} (no terminal to prompt on)", ExitCode.USAGE)
    return ask(prompt, secret=secret, twice=secret)


def init(
    ctx: typer.Context,
    state_dir: StateDirOpt = None,
    db: DbOpt = None,
    admin_email: Annotated[
        str | None, typer.Option("--admin-email", help="E-mail of the first global admin.")
    ] = None,
    admin_password: Annotated[
        str | None,
        typer.Option("--admin-password", help="Password (8+ chars); prompted when omitted."),
    ] = None,
    admin_name: Annotated[
        str, typer.Option("--admin-name", help="Display name of the admin.")
    ] = "Administrator",
    force: Annotated[
        bool, typer.Option("--force", help="Reset an existing global admin's password.")
    ] = False,
) -> None:
    """Create the state dir, JWT secret, database schema and first global admin.

    Safe to run again: with the same credentials it changes nothing.

    Examples:

      zapctl init --state-dir /var/lib/zap --admin-email admin@acme.com.br --admin-password s3cret!!

      zapctl init --db postgresql://zap@db/zap --admin-email admin@acme.com.br
    """
    from zapctl import offline
    from zapd.offline import init_instance

    sdir, url = offline.resolve_db(state_dir, db)
    offline.require_directory(url, will_create=sdir.resolve())

    email = _ask(admin_email, "--admin-email", "Admin e-mail")
    password = _ask(admin_password, "--admin-password", "Admin password", secret=True)
    result = offline.run(
        init_instance(
            state_dir=sdir,
            database_url=url,
            admin_email=email,
            admin_password=password,
            admin_name=admin_name,
            force=force,
        )
    )
    data = {
        "state_dir": str(result.state_dir),
        "database_url": offline.safe_url(result.database_url),
        "jwt_secret_file": str(result.jwt_secret_file),
        "revision": result.revision,
        "admin_email": result.admin_email,
        "admin": result.admin.value,
    }
    emit(
        ctx,
        data,
        f"state dir   {data['state_dir']}\n"
        f"database    {data['database_url']} (schema at {result.revision})\n"
        f"jwt secret  {data['jwt_secret_file']}\n"
        f"admin       {result.admin_email} ({result.admin.value})\n"
        f"next: zapd --state-dir {data['state_dir']}"
        + (f" --db '{data['database_url']}'" if db else ""),
    )
