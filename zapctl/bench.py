"""`zapctl bench ...`: what a node carries, measured on a fresh database.

zapctl may not import zapd or the `bench` package (the import contracts), so each
command runs `python -P -m bench SUBCOMMAND ...` in a child process with this
interpreter (`-P`: the working directory is not searched), reads the one JSON
document it prints and shows it through zapctl's output helper: `--json` passes it
through, otherwise a table of its figures. The
child's one-line error (`bench: ...`) becomes zapctl's, with the child's exit code
(2 for bad input, 1 for a failed run, 130 interrupted). Ctrl+C reaches the child too;
zapctl waits for it to drop its scratch database before exiting.

Every figure comes with its same-run baseline or ceiling (ratios, not absolute
times); the benchmarks themselves are documented in `bench/`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Annotated, Any

import typer

from zapctl.errors import CliError, ExitCode
from zapctl.output import emit, notice, state, table

app = typer.Typer(
    help="Benchmarks on a fresh database: ingest, latency, fan-out, HTTP, outbox, growth.",
    no_args_is_help=True,
)

DbOpt = Annotated[
    str,
    typer.Option(
        "--db",
        help="sqlite (a temporary file), postgres (a scratch database made on "
        "$ZAP_BENCH_PG_URL, default postgresql://postgres@127.0.0.1:5432/postgres, and "
        "dropped after), or a URL: a new SQLite file, or a PostgreSQL server to make the "
        "scratch database on.",
    ),
]
DurationOpt = Annotated[
    float, typer.Option("--duration", help="Seconds of measured traffic (per phase).")
]
RateOpt = Annotated[
    float | None,
    typer.Option("--rate", help="Offered events/s (open loop); default: as fast as it goes."),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the report as one JSON document (as zapctl --json).")
]
CHILD_GRACE = 120.0  # seconds the child gets to clean up after Ctrl+C


def _run(ctx: typer.Context, command: str, args: list[str], json_out: bool) -> None:
    if json_out:
        state(ctx).json = True
    # -P: the installed `bench`, never a `bench/` that happens to be in the working directory
    argv = [sys.executable, "-P", "-m", "bench", command, *args]
    if sys.stderr.isatty():
        notice(f"zapctl bench {command}: running (a fresh database, then the measurement)...")
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and package
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = proc.communicate()
    except KeyboardInterrupt:
        try:
            proc.communicate(timeout=CHILD_GRACE)  # it drops its scratch database first
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            proc.kill()
            proc.wait()
        raise CliError("interrupted", ExitCode.INTERRUPTED) from None
    if err and os.environ.get("ZAP_DEBUG") == "1":
        sys.stderr.write(err)
    report = _report(out)
    if proc.returncode != 0 and not (command == "startup" and report is not None):
        raise CliError(_error_line(err, proc.returncode), _code(proc.returncode))
    if report is None:
        raise CliError(f"bench {command} printed no report")
    emit(ctx, report, _human(report))
    if proc.returncode != 0:
        raise CliError("zapctl start-up is past its ceilings", ExitCode.ERROR)


def _report(out: str) -> dict[str, Any] | None:
    try:
        data = json.loads(out)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _code(returncode: int) -> ExitCode:
    if returncode == 2:
        return ExitCode.USAGE
    if returncode in (130, -2):
        return ExitCode.INTERRUPTED
    return ExitCode.ERROR


def _error_line(err: str, returncode: int) -> str:
    lines = [line.strip() for line in err.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("bench: "):
            return line.removeprefix("bench: ")
    last = lines[-1] if lines else f"exit code {returncode}"
    return f"the benchmark failed: {last}"


def _flatten(data: dict[str, Any], prefix: str = "") -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for key, value in data.items():
        if not prefix and key == "bench":
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            rows += _flatten(value, f"{name}.")
        else:
            rows.append({"figure": name, "value": value})
    return rows


def _human(report: dict[str, Any]) -> str:
    title = f"zapctl bench {report.get('bench', '')}".rstrip()
    return title + "\n" + table(_flatten(report), [("figure", "FIGURE"), ("value", "VALUE")])


def _common(db: str, duration: float, rate: float | None = None) -> list[str]:
    args = ["--db", db, "--duration", repr(duration)]
    if rate is not None:
        args += ["--rate", repr(rate)]
    return args


@app.command()
def ingest(
    ctx: typer.Context,
    db: DbOpt = "sqlite",
    duration: DurationOpt = 10.0,
    rate: RateOpt = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", help="Events in flight (without --rate).")
    ] = 32,
    assigned: Annotated[
        int, typer.Option("--assigned", help="Customers whose ticket an agent holds.")
    ] = 20,
    json_out: JsonOpt = False,
) -> None:
    """Events/s through the inbound pipeline, beside two same-run ceilings.

    The greeting-menu mix (new customers, menu answers, messages on assigned tickets)
    goes through the whole pipeline; then the very rows it wrote are written again with
    the raw driver, one transaction per event and 100 events per executemany
    transaction, on the same database: the ratios say how far the pipeline is from bare
    storage of its own output.

    Examples:

      zapctl bench ingest

      zapctl bench ingest --db postgres --duration 30

      zapctl --json bench ingest --db sqlite --duration 5
    """
    _run(
        ctx,
        "ingest",
        [
            *_common(db, duration, rate),
            "--concurrency",
            str(concurrency),
            "--assigned",
            str(assigned),
        ],
        json_out,
    )


@app.command()
def latency(
    ctx: typer.Context,
    db: DbOpt = "sqlite",
    duration: DurationOpt = 10.0,
    rate: Annotated[float, typer.Option("--rate", help="Offered events/s of the mix.")] = 50.0,
    assigned: Annotated[
        int, typer.Option("--assigned", help="Customers whose ticket the agent holds.")
    ] = 50,
    outbox: Annotated[
        bool,
        typer.Option(
            "--outbox/--no-outbox",
            help="Send the bot's replies through the outbox worker (to a no-op engine).",
        ),
    ] = True,
    json_out: JsonOpt = False,
) -> None:
    """Inbound message -> WebSocket event at the agent holding the ticket: p50/p95/p99.

    The greeting-menu mix is offered at --rate events/s; every message on an assigned
    ticket is timed from when it was due at the engine's sink to its `message.new` on
    the agent's socket. The bot's replies go out through the outbox worker (to an
    engine that accepts every send at once) as on a live daemon, unless --no-outbox.

    Examples:

      zapctl bench latency --rate 200

      zapctl bench latency --db postgres --rate 100 --duration 20
    """
    _run(
        ctx,
        "latency",
        [
            *_common(db, duration, rate),
            "--assigned",
            str(assigned),
            *([] if outbox else ["--no-outbox"]),
        ],
        json_out,
    )


@app.command()
def fanout(
    ctx: typer.Context,
    db: DbOpt = "sqlite",
    duration: DurationOpt = 10.0,
    rate: RateOpt = None,
    clients: Annotated[int, typer.Option("--clients", help="Agent WebSockets.")] = 100,
    per_tx: Annotated[int, typer.Option("--per-tx", help="Events per transaction.")] = 10,
    json_out: JsonOpt = False,
) -> None:
    """WebSocket deliveries/s to N agents and their p99, against plain websockets.

    Examples:

      zapctl bench fanout --clients 100

      zapctl bench fanout --db postgres --clients 50 --rate 200
    """
    _run(
        ctx,
        "fanout",
        [*_common(db, duration, rate), "--clients", str(clients), "--per-tx", str(per_tx)],
        json_out,
    )


@app.command()
def http(
    ctx: typer.Context,
    db: DbOpt = "sqlite",
    duration: DurationOpt = 10.0,
    clients: Annotated[int, typer.Option("--clients", help="Concurrent connections.")] = 8,
    path: Annotated[
        str, typer.Option("--path", help="Authenticated GET to measure.")
    ] = "/api/v1/departments",
    json_out: JsonOpt = False,
) -> None:
    """Requests/s of an authenticated API read against /healthz, in the same run.

    Examples:

      zapctl bench http

      zapctl bench http --db postgres --path /api/v1/tickets
    """
    _run(
        ctx,
        "http",
        [*_common(db, duration), "--clients", str(clients), "--path", path],
        json_out,
    )


@app.command()
def outbox(
    ctx: typer.Context,
    db: DbOpt = "sqlite",
    duration: DurationOpt = 10.0,
    messages: Annotated[int, typer.Option("--messages", help="Messages queued.")] = 2000,
    chats: Annotated[int, typer.Option("--chats", help="Chats they go to.")] = 200,
    json_out: JsonOpt = False,
) -> None:
    """Sends/s through the outbox to an engine that does nothing, rate limits off.

    Beside it, the same sends recorded by the raw driver, one transaction each.

    Examples:

      zapctl bench outbox

      zapctl bench outbox --db postgres --messages 5000
    """
    _run(
        ctx,
        "outbox",
        [*_common(db, duration), "--messages", str(messages), "--chats", str(chats)],
        json_out,
    )


@app.command()
def growth(
    ctx: typer.Context,
    db: DbOpt = "sqlite",
    duration: DurationOpt = 10.0,
    rate: RateOpt = None,
    messages: Annotated[int, typer.Option("--messages", help="Messages of history.")] = 1_000_000,
    clients: Annotated[int, typer.Option("--clients", help="Customers of history.")] = 100_000,
    concurrency: Annotated[
        int, typer.Option("--concurrency", help="Events in flight (without --rate).")
    ] = 32,
    json_out: JsonOpt = False,
) -> None:
    """Ingest with no history vs with a large one (default 1M messages, 100k clients).

    The ratio says how the pipeline's cost grows with history (1.0: flat). Writing the
    history takes a while at the default size.

    Examples:

      zapctl bench growth

      zapctl bench growth --db postgres --messages 100000 --clients 10000
    """
    _run(
        ctx,
        "growth",
        [
            *_common(db, duration, rate),
            "--messages",
            str(messages),
            "--clients",
            str(clients),
            "--concurrency",
            str(concurrency),
        ],
        json_out,
    )


@app.command()
def startup(
    ctx: typer.Context,
    runs: Annotated[int, typer.Option("--runs", help="Runs of each command.")] = 15,
    check: Annotated[bool, typer.Option("--check", help="Exit 1 past the ceilings.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """zapctl's start-up time against a bare `python -c pass`, with ratio ceilings.

    Examples:

      zapctl bench startup

      zapctl bench startup --runs 7 --check
    """
    _run(ctx, "startup", ["--runs", str(runs), *(["--check"] if check else [])], json_out)
