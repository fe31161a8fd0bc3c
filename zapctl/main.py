"""zapctl: the admin and scripting CLI. Imports stay lazy so `--help` starts fast."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Annotated

import typer

from zapctl import auth as auth_cmd
from zapctl import db as db_cmd
from zapctl import demo as demo_cmd
from zapctl import init as init_cmd
from zapctl import maintenance
from zapctl import restore as restore_cmd
from zapctl import send as send_cmd
from zapctl.errors import CliError, ExitCode
from zapctl.output import CliState

app = typer.Typer(
    name="zapctl",
    help="Administer zap: instances, companies, people, WhatsApp sessions, exports.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    rich_markup_mode=None,
)


@app.callback()
def _root(
    ctx: typer.Context,
    server: Annotated[
        str | None,
        typer.Option("--server", envvar="ZAP_SERVER", help="zapd URL (default 127.0.0.1:8765)."),
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON document on stdout and nothing else.")
    ] = False,
) -> None:
    ctx.obj = CliState(server=server, json=json_out)


app.command("init")(init_cmd.init)
app.command("login")(auth_cmd.login)
app.command("logout")(auth_cmd.logout)
app.command("whoami")(auth_cmd.whoami)
app.command("demo")(demo_cmd.demo)
app.command("purge")(maintenance.purge)
app.command("doctor")(maintenance.doctor)
app.command("backup")(maintenance.backup)
app.command("restore")(restore_cmd.restore)
app.command("send")(send_cmd.send)
app.add_typer(db_cmd.app, name="db")
# One Typer module per noun; each keeps its heavy imports inside its commands.
for _module, _name in (
    ("company", "company"),
    ("user", "user"),
    ("dept", "dept"),
    ("quick_reply", "quick-reply"),
    ("tag", "tag"),
    ("token", "token"),
    ("session", "session"),
    ("ticket", "ticket"),
    ("sandbox", "sandbox"),
    ("outbox", "outbox"),
    ("export", "export"),
    ("client", "client"),
    ("events", "events"),
):
    app.add_typer(importlib.import_module(f"zapctl.{_module}").app, name=_name)


def main() -> None:
    """Run zapctl, mapping errors to one-line messages and exit codes."""
    try:
        app(standalone_mode=True)
    except CliError as exc:
        sys.stderr.write(f"zapctl: {exc.message}\n")
        sys.exit(int(exc.code))
    except KeyboardInterrupt:
        sys.stderr.write("zapctl: interrupted\n")
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("ZAP_DEBUG") == "1":
            raise
        sys.stderr.write(
            f"zapctl: unexpected error: {type(exc).__name__}: {exc} (ZAP_DEBUG=1 for details)\n"
        )
        sys.exit(int(ExitCode.ERROR))
