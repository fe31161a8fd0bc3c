"""zapctl: the admin and scripting CLI.

Start-up is kept small: the root group (zapctl.lazy) imports a command's module only when
that command runs, and each command module keeps its heavy imports (the client, the wire
models, zapd for offline commands) inside its functions.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, ClassVar

import typer

from zapctl.errors import CliError, ExitCode
from zapctl.lazy import LazyCommand, LazyGroup
from zapctl.output import CliState


class _Root(LazyGroup):
    # name -> where the command lives, and its one-line summary for `zapctl --help`
    # (tests/zapctl/test_help.py checks each summary against the command's own help).
    commands_table: ClassVar[dict[str, LazyCommand]] = {
        "init": LazyCommand(
            "zapctl.init:init",
            "Create the state dir, JWT secret, database schema and first global admin.",
        ),
        "login": LazyCommand(
            "zapctl.auth:login",
            "Log in to zapd and keep the tokens (OS keyring, else a 0600 file).",
        ),
        "logout": LazyCommand(
            "zapctl.auth:logout", "End your login on zapd and forget the stored tokens."
        ),
        "whoami": LazyCommand("zapctl.auth:whoami", "Show who you are on zapd."),
        "demo": LazyCommand(
            "zapctl.demo:demo",
            "Run a whole zap locally: daemon, sandbox WhatsApp, demo company and customers.",
        ),
        "purge": LazyCommand(
            "zapctl.maintenance:purge",
            "Delete data older than a retention limit (dry run unless --apply).",
        ),
        "doctor": LazyCommand(
            "zapctl.doctor:doctor",
            "Check that this zap instance is healthy; exit 1 if any check fails.",
        ),
        "backup": LazyCommand(
            "zapctl.maintenance:backup", "Write a consistent backup of the instance to one .tar.gz."
        ),
        "restore": LazyCommand(
            "zapctl.restore:restore",
            "Restore a backup into the state dir (zapd must be stopped).",
        ),
        "send": LazyCommand(
            "zapctl.send:send",
            "Send a WhatsApp message through the outbox: to a ticket, or to a phone (SUPERVISOR+).",
        ),
        "db": LazyCommand("zapctl.db:app", "Schema migrations (works without zapd)."),
        "company": LazyCommand("zapctl.company:app", "Companies (tenants) and their settings."),
        "user": LazyCommand("zapctl.user:app", "Company users: roles, departments, passwords."),
        "dept": LazyCommand(
            "zapctl.dept:app", "Departments (queues): the greeting menu's choices."
        ),
        "quick-reply": LazyCommand(
            "zapctl.quick_reply:app", "Quick replies: canned answers typed as /shortcut."
        ),
        "tag": LazyCommand("zapctl.tag:app", "Tags: labels put on clients."),
        "category": LazyCommand(
            "zapctl.category:app",
            "Closing categories: what a ticket was about, chosen when it is closed.",
        ),
        "token": LazyCommand(
            "zapctl.token:app", "API tokens for scripts (use one with ZAP_TOKEN=...)."
        ),
        "session": LazyCommand(
            "zapctl.session:app",
            "WhatsApp sessions: add a number, link it with a QR code, start and stop its engine.",
        ),
        "ticket": LazyCommand(
            "zapctl.ticket:app",
            "Tickets: the service queue — list, show, accept, assign, transfer, close, reopen.",
        ),
        "sandbox": LazyCommand(
            "zapctl.sandbox:app",
            "The SANDBOX (simulated WhatsApp): link sessions, play customers, read their phones.",
        ),
        "outbox": LazyCommand(
            "zapctl.outbox:app",
            "The outbox: every outbound message's trip — list it, retry or drop dead letters.",
        ),
        "export": LazyCommand(
            "zapctl.export:app",
            "Export data as CSV or JSON Lines, straight from the database (works without zapd).",
        ),
        "client": LazyCommand(
            "zapctl.client:app",
            "Customers: list, show, tag, block; LGPD export and erase (those without zapd).",
        ),
        "bench": LazyCommand(
            "zapctl.bench:app",
            "Benchmarks on a fresh database: ingest, latency, fan-out, HTTP, outbox, growth.",
        ),
        "events": LazyCommand(
            "zapctl.events:app",
            "Raw inbound WhatsApp events stored by zapd (works on the database, without zapd).",
        ),
    }


app = typer.Typer(
    name="zapctl",
    cls=_Root,
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
        typer.Option(
            "--server",
            envvar="ZAP_SERVER",
            help="zapd URL (default: the one last logged in to, else 127.0.0.1:8765).",
        ),
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON document on stdout and nothing else.")
    ] = False,
) -> None:
    ctx.obj = CliState(server=server, json=json_out)


def main() -> None:
    """Run zapctl, mapping errors to one-line messages and exit codes."""
    try:
        app(standalone_mode=True)
    except CliError as exc:
        sys.stderr.write(f"zapctl: {exc.message}\n")
        sys.exit(int(exc.code))
    except KeyboardInterrupt:
        sys.stderr.write("zapctl: interrupted\n")
        sys.exit(int(ExitCode.INTERRUPTED))
    except Exception as exc:
        if os.environ.get("ZAP_DEBUG") == "1":
            raise
        sys.stderr.write(
            f"zapctl: unexpected error: {type(exc).__name__}: {exc} (ZAP_DEBUG=1 for details)\n"
        )
        sys.exit(int(ExitCode.ERROR))
