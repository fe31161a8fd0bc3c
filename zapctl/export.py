"""`zapctl export ...`: stream conversations, messages, tickets, audit rows or metrics to a file.

Offline: the command opens the database itself (like `zapctl db`), because an export may
be millions of rows and must stream them with flat memory. It reads one consistent
snapshot and never locks zapd's writers out. This module also holds the helpers the
other offline data commands share (company option, time parsing, atomic output).
"""

from __future__ import annotations

import contextlib
import enum
import io
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from zapctl.errors import CliError, ExitCode
from zapctl.offline import open_database
from zapctl.offline import run as run_offline
from zapctl.options import DbOpt, StateDirOpt
from zapctl.output import emit, notice, state

if TYPE_CHECKING:
    from zapd.offline import Filters

T = TypeVar("T")

app = typer.Typer(
    help="Export data as CSV or JSON Lines, straight from the database (works without zapd).",
    no_args_is_help=True,
)


class Format(enum.StrEnum):
    """Output formats of the row exports."""

    csv = "csv"
    jsonl = "jsonl"


CompanyOpt = Annotated[
    str | None,
    typer.Option("--company", help="Only this company: its id or CNPJ (any punctuation)."),
]
OutputOpt = Annotated[
    Path | None,
    typer.Option(
        "-o",
        "--output",
        help="Write to FILE (atomically: a temp file renamed at the end) instead of stdout.",
        dir_okay=False,
    ),
]
FormatOpt = Annotated[Format, typer.Option("--format", help="csv (RFC 4180, header row) or jsonl.")]
SinceOpt = Annotated[
    str | None,
    typer.Option("--since", help="From this time on (ISO 8601; no zone means UTC), inclusive."),
]
UntilOpt = Annotated[
    str | None, typer.Option("--until", help="Before this time (ISO 8601), exclusive.")
]
DeptOpt = Annotated[
    str | None,
    typer.Option("--dept", help="Only this department: id, or slug/name with --company."),
]


# --------------------------------------------------------------------------- shared helpers


def parse_time(value: str | None, flag: str) -> datetime | None:
    """Parse an ISO 8601 date or time given on the command line (naive means UTC)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise CliError(
            f"{flag}: {value!r} is not an ISO 8601 date or time (e.g. 2024-05-01T00:00:00-03:00)",
            ExitCode.USAGE,
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


class Output:
    """Where an export goes: stdout, or a file written atomically (temp file, then rename)."""

    def __init__(self, path: Path | None, *, mode: int = 0o600) -> None:
        self.path = path
        self.mode = mode
        self.tmp: Path | None = None
        self.fh: IO[str] | None = None

    def __enter__(self) -> IO[str]:
        if self.path is None:
            self.fh = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="")
            return self.fh
        target = self.path
        if target.is_dir():
            raise CliError(f"cannot write {target}: it is a directory")
        self.tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, self.mode)
        except OSError as exc:
            raise CliError(f"cannot write {target}: {exc.strerror}") from None
        self.fh = open(fd, "w", encoding="utf-8", newline="")
        return self.fh

    def __exit__(self, exc_type: type[BaseException] | None, exc: object, tb: object) -> None:
        fh = self.fh
        if fh is None:
            return
        if self.path is None:
            if exc_type is None:
                fh.flush()
            with contextlib.suppress(ValueError, OSError):
                fh.detach()  # type: ignore[attr-defined]
            return
        assert self.tmp is not None
        try:
            if exc_type is None:
                fh.flush()
                os.fsync(fh.fileno())
            fh.close()
            if exc_type is None:
                os.replace(self.tmp, self.path)
        finally:
            if exc_type is not None or self.tmp.exists():
                with contextlib.suppress(OSError):
                    self.tmp.unlink()


class OutputClosed(Exception):
    """The reader of stdout went away (`| head`); not an OSError, so no layer remaps it."""


@contextlib.contextmanager
def broken_pipe_guard() -> Iterator[None]:
    """Turn a reader that went away (`| head`) into a one-line error instead of a traceback."""
    try:
        yield
    except (BrokenPipeError, OutputClosed):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise CliError("output closed before the export finished (broken pipe)") from None


def show_progress(output: Path | None) -> bool:
    """Tell whether a progress bar fits: stderr is a terminal the data does not go to."""
    if not sys.stderr.isatty():
        return False
    return output is not None or not sys.stdout.isatty()


# --------------------------------------------------------------------------- writers


def _plain_csv_row(row: Any) -> list[Any]:
    return ["true" if v is True else "false" if v is False else v for v in row]


class RowWriter:
    """Writes raw export rows as CSV (header first) or JSON Lines."""

    def __init__(self, fh: IO[str], fmt: Format, kind: str, columns: list[str]) -> None:
        import csv
        import json

        from zapd.offline import exports

        self.fh = fh
        self.columns = columns
        self.fmt = fmt
        self._convert = (
            exports.converter(kind, csv=fmt is Format.csv) if kind != "metrics" else _plain_csv_row
        )
        self._dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        self._csv = csv.writer(fh, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        if fmt is Format.csv:
            try:
                self._csv.writerow(columns)
            except BrokenPipeError:
                raise OutputClosed from None

    def write(self, rows: Any) -> None:
        """Write a chunk of rows."""
        try:
            self._write(rows)
        except BrokenPipeError:
            raise OutputClosed from None

    def _write(self, rows: Any) -> None:
        convert = self._convert
        if self.fmt is Format.csv:
            self._csv.writerows([convert(row) for row in rows])
            return
        cols = self.columns
        dumps = self._dumps
        self.fh.write(
            "".join(dumps(dict(zip(cols, convert(row), strict=True))) + "\n" for row in rows)
        )


# --------------------------------------------------------------------------- the export


async def _export(
    url: str,
    kind: str,
    refs: dict[str, str | None],
    times: tuple[datetime | None, datetime | None],
    fmt: Format,
    fh: IO[str],
    progress: bool,
) -> int:
    from zapd.offline import create_engine, exports, read_only, resolve_company, session_factory

    engine = read_only(create_engine(url))
    try:
        async with session_factory(engine)() as db:
            company = await resolve_company(db, refs["company"]) if refs["company"] else None
            dept = (
                await exports.resolve_department(db, company.id if company else None, refs["dept"])
                if refs["dept"]
                else None
            )
            f = exports.Filters(
                company_id=company.id if company else None,
                department_id=dept.id if dept else None,
                since=times[0],
                until=times[1],
            )
            if kind == "metrics":
                return await _metrics(db, f, fmt, fh)
            exports.statement(kind, f)  # refuses filters that do not apply, before any output
            conn = await db.connection()
            writer = RowWriter(fh, fmt, kind, exports.COLUMNS[kind])
            total = await exports.count(conn, kind, f) if progress else None
            return await _pump(exports.stream(conn, kind, f), writer, kind, total)
    finally:
        await engine.dispose()


async def _pump(chunks: Any, writer: RowWriter, kind: str, total: int | None) -> int:
    written = 0
    if total is None:
        async for rows in chunks:
            writer.write(rows)
            written += len(rows)
        return written
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        f"[bold]{kind}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(kind, total=total)
        async for rows in chunks:
            writer.write(rows)
            written += len(rows)
            bar.update(task, completed=written)
    return written


async def _metrics(db: Any, f: Filters, fmt: Format, fh: IO[str]) -> int:
    import json

    from zapd.offline import ValidationFailed, exports

    if f.company_id is None:
        raise CliError("the metrics export needs --company", ExitCode.USAGE)
    try:
        summary = await exports.metrics(
            db, f.company_id, since=f.since, until=f.until, department_id=f.department_id
        )
    except ValidationFailed as exc:
        raise CliError(exc.message, ExitCode.USAGE) from None
    doc = summary.model_dump(mode="json")
    if fmt is Format.jsonl:
        fh.write(json.dumps(doc, ensure_ascii=False) + "\n")
        return 1
    rows = exports.metric_rows(doc)
    writer = RowWriter(fh, Format.csv, "metrics", exports.METRIC_COLUMNS)
    writer.write(rows)
    return len(rows)


def run_export(
    ctx: typer.Context,
    kind: str,
    fmt: Format,
    since: str | None,
    until: str | None,
    company: str | None,
    dept: str | None,
    output: Path | None,
    state_dir: Path | None,
    db: str | None,
) -> None:
    """Run one export kind end to end (shared by the `export` commands)."""
    if state(ctx).json and output is None:
        raise CliError(
            "--json needs -o FILE (without it the export itself goes to stdout)", ExitCode.USAGE
        )
    times = (parse_time(since, "--since"), parse_time(until, "--until"))
    if times[0] and times[1] and times[0] >= times[1]:
        raise CliError("--since must be before --until", ExitCode.USAGE)
    _, url = open_database(state_dir, db)
    progress = show_progress(output)
    with broken_pipe_guard(), Output(output) as fh:
        rows = run_offline(
            _export(url, kind, {"company": company, "dept": dept}, times, fmt, fh, progress)
        )
    if output is None:
        if sys.stderr.isatty():
            notice(f"{rows} {kind} rows exported")
        return
    emit(
        ctx,
        {"kind": kind, "format": fmt.value, "rows": rows, "file": str(output)},
        f"wrote {rows} {kind} rows to {output}",
    )


# --------------------------------------------------------------------------- commands

_COMMON = """
Streams from the database with flat memory (a server-side cursor on PostgreSQL, id-ordered
chunks on SQLite) and never blocks zapd. CSV: RFC 4180, UTF-8, CRLF line ends, a header
row; empty cells are NULL. JSON Lines: one object per line. Times are ISO 8601 in UTC
(...Z); enums are lower-case names. A progress bar shows on a terminal, never in a pipe.
--since/--until filter on {time}.
"""

_COLUMNS_HELP: dict[str, list[tuple[str, str]]] = {
    "conversations": [
        ("id", "chat id"),
        ("company_id", "company"),
        ("session_id", "WhatsApp session (number) the chat is on"),
        ("session_name", "its name"),
        ("wa_chat_id", "WhatsApp chat id (JID)"),
        ("type", "direct, group, broadcast or newsletter"),
        ("name", "chat name"),
        ("client_id", "client (customer)"),
        ("client_phone", "client's E.164 phone"),
        ("client_name", "client's name (or WhatsApp push name)"),
        ("created_at", "first seen"),
        ("last_message_at", "last message"),
        ("message_count", "messages in the chat"),
        ("ticket_count", "tickets of the client on that session"),
        ("unread_count", "unread messages"),
        ("archived", "true/false"),
    ],
    "messages": [
        ("id", "message id"),
        ("company_id", "company"),
        ("created_at", "stored at"),
        ("wa_timestamp", "when WhatsApp says it happened"),
        ("session_id", "WhatsApp session"),
        ("chat_id", "chat"),
        ("client_phone", "the chat's client phone"),
        ("ticket_id", "ticket"),
        ("ticket_number", "ticket #number"),
        ("department_id", "the ticket's department"),
        ("direction", "inbound or outbound"),
        ("type", "text, image, audio, ..."),
        ("status", "queued, sent, delivered, read, played, failed, received"),
        ("is_note", "internal note (never sent)"),
        ("author_id", "agent who wrote it"),
        ("author_email", "their e-mail"),
        ("body", "text"),
        ("media_id", "attached file"),
        ("media_mime", "its type"),
        ("media_filename", "its name"),
        ("media_size", "its size in bytes"),
        ("wa_message_id", "WhatsApp message id"),
        ("quoted_message_id", "message replied to"),
        ("error", "last delivery error"),
    ],
    "tickets": [
        ("id", "ticket id"),
        ("number", "per-company #number"),
        ("company_id", "company"),
        ("status", "pending, open or closed"),
        ("priority", "low, normal, high, urgent"),
        ("flow_state", "greeting-menu state"),
        ("client_id", "client"),
        ("client_phone", "client's phone"),
        ("client_name", "client's name"),
        ("session_id", "WhatsApp session"),
        ("session_name", "its name"),
        ("department_id", "department"),
        ("department_name", "its name"),
        ("category_id", "closing category"),
        ("category_name", "its name"),
        ("assignee_id", "agent"),
        ("assignee_email", "their e-mail"),
        ("created_at", "opened"),
        ("first_response_at", "first agent answer"),
        ("last_message_at", "last message"),
        ("closed_at", "closed"),
        ("closed_by_id", "who closed it"),
        ("reopen_count", "times reopened"),
        ("message_count", "messages in the ticket"),
    ],
    "audit": [
        ("id", "audit row id"),
        ("created_at", "when"),
        ("company_id", "company (empty: instance-wide)"),
        ("user_id", "who (empty: zapd or zapctl itself)"),
        ("user_email", "their e-mail"),
        ("api_token_id", "API token used"),
        ("action", "e.g. ticket.transfer"),
        ("entity_type", "what was changed"),
        ("entity_id", "its id"),
        ("ip", "client address"),
        ("data", "details as JSON (before/after changes)"),
    ],
}

_TIME_OF = {
    "conversations": "the chat's creation",
    "messages": "the message's creation",
    "tickets": "the ticket's creation",
    "audit": "the audit row's time",
}


def _help(kind: str, summary: str, example: str) -> str:
    width = max(len(n) for n, _ in _COLUMNS_HELP[kind]) + 2
    cols = "\n".join(f"  {n.ljust(width)}{d}" for n, d in _COLUMNS_HELP[kind])
    return (
        f"{summary}\n{_COMMON.format(time=_TIME_OF[kind])}\nColumns:\n\n\b\n{cols}\n\n"
        f"Examples:\n\n\b\n{example}"
    )


def _row_export(kind: str, summary: str, example: str) -> None:
    """Register `zapctl export KIND`: one row export with the common filters."""

    def command(
        ctx: typer.Context,
        fmt: FormatOpt = Format.csv,
        since: SinceOpt = None,
        until: UntilOpt = None,
        company: CompanyOpt = None,
        dept: DeptOpt = None,
        output: OutputOpt = None,
        state_dir: StateDirOpt = None,
        db: DbOpt = None,
    ) -> None:
        run_export(ctx, kind, fmt, since, until, company, dept, output, state_dir, db)

    app.command(kind, help=_help(kind, summary, example))(command)


_row_export(
    "conversations",
    "Export conversations (WhatsApp chats) with their client and counts.",
    "  zapctl export conversations --company 11.222.333/0001-81 -o chats.csv\n"
    "  zapctl export conversations --dept vendas --company ACME_ID --format jsonl",
)
_row_export(
    "messages",
    "Export messages, with bodies, media metadata and their ticket.",
    "  zapctl export messages --since 2024-05-01 --until 2024-06-01 -o maio.csv\n"
    "  zapctl export messages --company 11222333000181 --format jsonl | gzip > msgs.jsonl.gz",
)
_row_export(
    "tickets",
    "Export tickets with client, department, agent and timings.",
    "  zapctl export tickets --company 11.222.333/0001-81 --since 2024-01-01 -o t.csv\n"
    "  zapctl --json export tickets --dept suporte --company ACME_ID -o t.jsonl --format jsonl",
)


@app.command(
    "audit",
    help=_help(
        "audit",
        "Export the audit log (who changed what, when, from where).",
        "  zapctl export audit --since 2024-05-01 -o audit.csv\n"
        "  zapctl export audit --company 11222333000181 --format jsonl",
    ),
)
def audit(
    ctx: typer.Context,
    fmt: FormatOpt = Format.csv,
    since: SinceOpt = None,
    until: UntilOpt = None,
    company: CompanyOpt = None,
    output: OutputOpt = None,
    state_dir: StateDirOpt = None,
    db: DbOpt = None,
) -> None:
    """Export the audit log."""
    run_export(ctx, "audit", fmt, since, until, company, None, output, state_dir, db)


@app.command("metrics")
def metrics(
    ctx: typer.Context,
    company: Annotated[
        str, typer.Option("--company", help="The company: its id or CNPJ (required).")
    ],
    fmt: FormatOpt = Format.csv,
    since: SinceOpt = None,
    until: UntilOpt = None,
    dept: DeptOpt = None,
    output: OutputOpt = None,
    state_dir: StateDirOpt = None,
    db: DbOpt = None,
) -> None:
    """Export the metrics summary of a company (the report of /api/v1/metrics).

    Tickets by status and department, first-response and resolution times, message
    volume per day, agent load and queues, over [--since, --until) (default: the last 7
    days; at most 366). jsonl: the summary as one JSON object. csv: one row per figure,
    columns section, item, metric, value (e.g. `tickets.by_status,closed,count,12`).

    Examples:

      zapctl export metrics --company 11.222.333/0001-81 --since 2024-05-01 -o maio.csv

      zapctl export metrics --company ACME_ID --format jsonl | jq .response_times
    """
    run_export(ctx, "metrics", fmt, since, until, company, dept, output, state_dir, db)
