"""`zapctl purge`, `zapctl doctor`, `zapctl backup`: keeping an instance healthy."""

from __future__ import annotations

import calendar
import contextlib
import os
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from zapctl.errors import CliError, ExitCode
from zapctl.export import CompanyOpt
from zapctl.offline import open_database
from zapctl.offline import run as run_offline
from zapctl.options import DbOpt, StateDirOpt
from zapctl.output import emit, table

# --------------------------------------------------------------------------- purge

_DURATION = re.compile(
    r"^\s*(\d{1,6})\s*(d|days?|w|weeks?|m|mo|mon|months?|y|yr|years?)\s*$", re.IGNORECASE
)
MAX_YEARS = 200


def _months_back(now: datetime, months: int) -> datetime:
    year, month0 = divmod(now.year * 12 + now.month - 1 - months, 12)
    if year < 1:
        raise ValueError("too far back")
    day = min(now.day, calendar.monthrange(year, month0 + 1)[1])
    return now.replace(year=year, month=month0 + 1, day=day)


def parse_duration(text: str, now: datetime) -> datetime:
    """Return `now` minus a duration such as 365d, 12w, 6m (months) or 1y (exit 2 if bad)."""
    match = _DURATION.match(text)
    bad = CliError(
        f"--older-than: {text!r} is not a duration like 365d, 12w, 6m (months) or 1y",
        ExitCode.USAGE,
    )
    if match is None:
        raise bad
    amount, unit = int(match.group(1)), match.group(2).lower()
    if amount < 1:
        raise CliError("--older-than must be at least 1 (e.g. 30d)", ExitCode.USAGE)
    try:
        if unit.startswith("d"):
            return now - timedelta(days=amount)
        if unit.startswith("w"):
            return now - timedelta(weeks=amount)
        if unit.startswith("y"):
            if amount > MAX_YEARS:
                raise ValueError("too far back")
            return _months_back(now, 12 * amount)
        if amount > 12 * MAX_YEARS:
            raise ValueError("too far back")
        return _months_back(now, amount)
    except (OverflowError, ValueError):
        raise CliError(f"--older-than: {text!r} reaches too far back", ExitCode.USAGE) from None


_PURGE_LABELS = (
    ("tickets", "closed tickets"),
    ("messages", "their messages"),
    ("message_status_history", "their status history"),
    ("assignments", "their assignment history"),
    ("webhook_events", "processed raw inbound events"),
    ("events", "realtime events"),
    ("session_logs", "session log lines"),
)


def purge(
    ctx: typer.Context,
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than",
            help="Age limit: 365d (days), 12w (weeks), 6m (months) or 1y (years).",
            show_default=False,
        ),
    ],
    apply: Annotated[
        bool, typer.Option("--apply", help="Really delete (default: only show what would go).")
    ] = False,
    company: CompanyOpt = None,
    batch: Annotated[
        int, typer.Option("--batch", min=1, max=100_000, help="Rows deleted per transaction.")
    ] = 1000,
    state_dir: StateDirOpt = None,
    db: DbOpt = None,
) -> None:
    """Delete data older than a retention limit (dry run unless --apply).

    What goes: tickets CLOSED before the limit with their messages (and, with them,
    status history, assignments and outbox rows), raw inbound events already processed
    or ignored, realtime events and session log lines older than the limit. Failed raw
    events are kept (see `zapctl events replay`). Deletes in small transactions
    (--batch rows each), so zapd keeps working meanwhile; an audit row
    `retention.purge` records the counts. Works on the database, without zapd.

    Examples:

      zapctl purge --older-than 365d                 # what would go

      zapctl purge --older-than 2y --apply

      zapctl --json purge --older-than 6m --company 11.222.333/0001-81 --apply
    """
    cutoff = parse_duration(older_than, datetime.now(UTC))
    _, url = open_database(state_dir, db)
    from zapd.offline import purge as purge_data

    result = run_offline(purge_data(url, cutoff, company, apply, batch, older_than.strip()))
    counts = result["counts"]
    done = result.get("deleted", {})
    rows = [
        {
            "what": what,
            "count": counts.get(key, 0),
            **({"deleted": done.get(key, "cascade")} if apply else {}),
        }
        for key, what in _PURGE_LABELS
    ]
    cols = [("what", "OLDER THAN " + older_than.strip().upper()), ("count", "ROWS")]
    if apply:
        cols.append(("deleted", "DELETED"))
    footer = (
        f"deleted (cutoff {result['cutoff']})"
        if apply
        else f"dry run (cutoff {result['cutoff']}): nothing deleted; add --apply to delete"
    )
    emit(ctx, result, table(rows, cols) + "\n" + footer)


# --------------------------------------------------------------------------- doctor

CLOCK_SKEW_WARN = 30.0  # seconds
CHROMIUM_TIMEOUT = 10.0


@dataclass
class Check:
    """One line of the doctor's report."""

    check: str
    status: str  # pass | warn | fail | skip
    detail: str


def _daemon_checks(server: str) -> list[Check]:
    import asyncio
    from email.utils import parsedate_to_datetime

    from shared.client import ZapClient, ZapError

    async def probe() -> tuple[int, str | None, float]:
        async with ZapClient(server, timeout=5) as zap:
            before = time.time()
            response = await zap.request("GET", "/healthz", auth=False)
            after = time.time()
            return response.status_code, response.headers.get("date"), (before + after) / 2

    try:
        status, date, local = asyncio.run(probe())
    except ZapError as exc:
        return [
            Check("daemon", "fail", f"{server}: {getattr(exc, 'message', exc)}"),
            Check("clock", "skip", "needs a reachable zapd"),
        ]
    out = [Check("daemon", "pass", f"{server} answers /healthz ({status})")]
    if not date:
        out.append(Check("clock", "warn", "zapd sent no Date header to compare clocks with"))
        return out
    try:
        remote = parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        out.append(Check("clock", "warn", f"unreadable Date header {date!r}"))
        return out
    skew = remote - local
    # The header has one-second resolution: up to a second of apparent skew is noise.
    detail = f"zapd's clock is {abs(skew):.0f}s {'ahead' if skew > 0 else 'behind'}"
    if abs(skew) > CLOCK_SKEW_WARN:
        out.append(Check("clock", "warn", detail + f" (over {CLOCK_SKEW_WARN:.0f}s: check NTP)"))
    else:
        out.append(Check("clock", "pass", detail if abs(skew) >= 2 else "in sync with zapd"))
    return out


def _database_check(state_dir: Path | None, db: str | None) -> tuple[Check, Path | None]:
    from zapctl import offline
    from zapd.offline import create_engine, migrate, sqlite_path

    try:
        sdir, url = offline.resolve_db(state_dir, db)
    except CliError as exc:
        return Check("database", "fail", exc.message), None
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return Check("database", "fail", f"no database at {path} (run: zapctl init)"), sdir

    async def go() -> migrate.MigrationStatus:
        engine = create_engine(url)
        try:
            return await migrate.status(engine)
        finally:
            await engine.dispose()

    try:
        st = offline.run(go())
    except CliError as exc:
        return Check("database", "fail", f"{offline.safe_url(url)}: {exc.message}"), sdir
    where = offline.safe_url(url)
    if st.up_to_date:
        return Check("database", "pass", f"{where}, schema at {st.current} (current)"), sdir
    return (
        Check(
            "database",
            "fail",
            f"{where}: schema {st.current or '(empty)'}, newest {st.head} (run: zapctl db upgrade)",
        ),
        sdir,
    )


def chromium_path() -> str | None:
    """Return the Chromium binary the webjs engine would use, if one is installed.

    ZAP_CHROMIUM names it explicitly; else Debian's /usr/bin/chromium, else PATH.
    """
    explicit = os.environ.get("ZAP_CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for candidate in (
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _chromium_check() -> Check:
    explicit = os.environ.get("ZAP_CHROMIUM")
    if explicit and not os.access(explicit, os.X_OK):
        return Check("chromium", "fail", f"ZAP_CHROMIUM={explicit} is not an executable file")
    path = chromium_path()
    if path is None:
        return Check(
            "chromium", "warn", "not installed (needed by the webjs engine: apt install chromium)"
        )
    try:
        proc = subprocess.run(  # noqa: S603 - a fixed binary with a fixed argument
            [path, "--version"],
            capture_output=True,
            text=True,
            timeout=CHROMIUM_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return Check("chromium", "fail", f"{path} --version did not answer in 10s")
    except OSError as exc:
        return Check("chromium", "fail", f"{path} cannot run: {exc.strerror}")
    if proc.returncode != 0:
        why = (proc.stderr or proc.stdout).strip().splitlines()
        return Check(
            "chromium",
            "fail",
            f"{path} --version exited {proc.returncode}: {why[0] if why else ''}",
        )
    return Check("chromium", "pass", f"{path}: {proc.stdout.strip()}")


def _wajs_check() -> Check:
    from zapd.offline import wajs_bundle as bundle

    explicit = os.environ.get("ZAP_WAJS_PATH")
    pin = bundle.pin()
    path = Path(explicit) if explicit else bundle.default_path()
    if not path.is_file():
        if explicit:
            return Check("wa-js", "fail", f"ZAP_WAJS_PATH={explicit} is not a file")
        return Check(
            "wa-js",
            "warn",
            f"wa-js {pin.version} not found at {path} (needed by the webjs engine: ./dev setup)",
        )
    try:
        found = bundle.locate(path)
    except bundle.BundleError as exc:
        return Check("wa-js", "fail", str(exc))
    return Check("wa-js", "pass", f"wa-js {found.version} at {found.path} (sha256 matches the pin)")


def _keyring_check() -> Check:
    from zapctl import credentials

    if credentials.keyring_usable():
        return Check("keyring", "pass", "logins are kept in the OS keyring")
    return Check(
        "keyring",
        "warn",
        f"no OS keyring: logins are kept in {credentials._file()} (mode 0600)",
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _state_dir_check(sdir: Path | None) -> Check:
    from zapd.offline import JWT_SECRET_FILENAME

    if sdir is None:
        return Check("state dir", "skip", "unknown state dir")
    if not sdir.is_dir():
        return Check("state dir", "fail", f"{sdir} does not exist (run: zapctl init)")
    problems: list[str] = []
    mode = _mode(sdir)
    if mode & 0o077:
        problems.append(f"{sdir} is {mode:04o}, want 0700 (chmod 700 {sdir})")
    secret = sdir / JWT_SECRET_FILENAME
    if secret.exists():
        smode = _mode(secret)
        if smode & 0o077:
            problems.append(f"{secret} is {smode:04o}, want 0600 (chmod 600 {secret})")
    elif not os.environ.get("ZAP_JWT_SECRET"):
        problems.append(f"no {secret} and no ZAP_JWT_SECRET (run: zapctl init)")
    if problems:
        return Check("state dir", "fail", "; ".join(problems))
    return Check("state dir", "pass", f"{sdir} 0700, {JWT_SECRET_FILENAME} private")


def doctor(ctx: typer.Context, state_dir: StateDirOpt = None, db: DbOpt = None) -> None:
    """Check that this zap instance is healthy; exit 1 if any check fails.

    Checks: zapd answers /healthz at --server; the database opens and its schema is
    current; Chromium is installed and runs, and the pinned wa-js bundle is present with
    its pinned sha256 (warnings when missing, until the webjs engine is used); an OS
    keyring keeps logins (warning when a file is used instead); the state dir is 0700
    and jwt.secret 0600; zapd's clock agrees with this machine's (warning past 30 s).
    --json prints the list of checks.

    Examples:

      zapctl doctor

      zapctl --server http://10.0.0.5:8765 --json doctor --db postgresql://zap@db/zap
    """
    from zapctl import api

    checks = _daemon_checks(api.settings(ctx).server)
    database, sdir = _database_check(state_dir, db)
    checks.insert(1, database)
    checks += [_chromium_check(), _wajs_check(), _keyring_check(), _state_dir_check(sdir)]
    order = {
        "daemon": 0,
        "database": 1,
        "state dir": 2,
        "clock": 3,
        "chromium": 4,
        "wa-js": 5,
        "keyring": 6,
    }
    checks.sort(key=lambda c: order.get(c.check, 99))
    failed = [c for c in checks if c.status == "fail"]
    rows = [{**asdict(c), "status": c.status.upper()} for c in checks]
    summary = f"{len(failed)} check(s) failed" if failed else "all checks passed"
    emit(
        ctx,
        [asdict(c) for c in checks],
        table(rows, [("check", "CHECK"), ("status", "STATUS"), ("detail", "DETAIL")])
        + "\n"
        + summary,
    )
    if failed:
        raise typer.Exit(int(ExitCode.ERROR))


# --------------------------------------------------------------------------- backup

_MEDIA_FILE = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{64}$")


BACKUP_SUFFIXES = (".tar.gz", ".tgz")
BACKUP_FORMAT = "zap.backup.v1"


def _private(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Store every member owner-only (0600): the archive holds the database and secrets."""
    info.mode = 0o600
    return info


def _sqlite_copy(src: Path, dst: Path) -> None:
    import sqlite3

    source = sqlite3.connect(src, timeout=30)
    target = sqlite3.connect(dst)
    try:
        source.backup(target)  # a consistent snapshot, even while zapd writes
        ok = target.execute("PRAGMA quick_check").fetchone()
        if not ok or ok[0] != "ok":
            raise CliError(f"the copy of {src} failed its integrity check: {ok}")
    except sqlite3.Error as exc:
        raise CliError(f"cannot copy {src}: {exc}") from None
    finally:
        target.close()
        source.close()


def run_pg_tool(tool: str, url: str, args: Callable[[str], list[str]], purpose: str) -> None:
    """Run a PostgreSQL client tool (pg_dump, pg_restore) against `url`; one-line errors.

    `args(dsn)` gives its arguments; the password goes through PGPASSWORD, never argv
    (where `ps` would show it). `purpose` ends the "not installed" hint.
    """
    from sqlalchemy.engine import make_url

    binary = shutil.which(tool)
    if binary is None:
        raise CliError(
            f"{tool} not found on PATH: install the PostgreSQL client tools "
            f"(apt install postgresql-client) {purpose}"
        )
    u = make_url(url).set(drivername="postgresql")
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    dsn = u.set(password=None).render_as_string(hide_password=False)
    proc = subprocess.run(  # noqa: S603 - a tool from PATH, arguments are not a shell line
        [binary, *args(dsn)],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        raise CliError(f"{tool} failed: {lines[0] if lines else f'exit {proc.returncode}'}")


def _pg_dump(url: str, dst: Path) -> None:
    run_pg_tool(
        "pg_dump",
        url,
        lambda dsn: ["--format=custom", "--no-owner", "--no-privileges", f"--file={dst}", dsn],
        "to back up a PostgreSQL database",
    )


def backup(
    ctx: typer.Context,
    output: Annotated[
        Path,
        typer.Option("-o", "--output", help="The .tar.gz to write (mode 0600).", dir_okay=False),
    ],
    force: Annotated[bool, typer.Option("--force", help="Overwrite FILE if it exists.")] = False,
    state_dir: StateDirOpt = None,
    db: DbOpt = None,
) -> None:
    """Write a consistent backup of the instance to one .tar.gz.

    The archive holds the database (SQLite: a consistent copy made with SQLite's backup
    API while zapd runs, as zap.db; PostgreSQL: a `pg_dump --format=custom` dump as
    zap.pgdump, which needs pg_dump on PATH), the JWT secret (jwt.secret) and the media
    files (media/). It holds secrets and conversations: keep it private.

    Every member is stored with mode 0600. Restore with `zapctl restore FILE` (zapd
    stopped).

    Examples:

      zapctl backup -o /srv/backups/zap-$(date +%F).tar.gz

      zapctl --json backup --db postgresql://zap@db/zap -o zap.tar.gz
    """
    import json

    from zapd.offline import JWT_SECRET_FILENAME, MEDIA_DIRNAME, sqlite_path

    if not output.name.endswith(BACKUP_SUFFIXES):
        raise CliError(
            f"{output.name}: a backup is a gzip'd tar, name it *.tar.gz (or *.tgz)",
            ExitCode.USAGE,
        )
    if output.exists() and not force:
        raise CliError(f"{output} exists (use --force to overwrite)")
    if not output.parent.is_dir():
        raise CliError(f"cannot write {output}: {output.parent} is not a directory")
    sdir, url = open_database(state_dir, db)
    source = sqlite_path(url)
    contents: list[str] = []
    with tempfile.TemporaryDirectory(prefix=".zap-backup-", dir=output.parent) as work:
        staging = Path(work)
        if source is not None:
            _sqlite_copy(source, staging / "zap.db")
            db_name, backend = "zap.db", "sqlite"
        else:
            _pg_dump(url, staging / "zap.pgdump")
            db_name, backend = "zap.pgdump", "postgresql"
        manifest = {
            "format": BACKUP_FORMAT,
            "created_at": datetime.now(UTC).isoformat(),
            "database": backend,
            "state_dir": str(sdir),
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        tmp = staging / "out.tar.gz"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        media_files = 0
        with os.fdopen(fd, "wb") as raw:
            tar = tarfile.open(fileobj=raw, mode="w:gz")  # noqa: SIM115 - closed below
            tar.add(staging / "manifest.json", arcname="manifest.json", filter=_private)
            tar.add(staging / db_name, arcname=db_name, filter=_private)
            contents += ["manifest.json", db_name]
            secret = sdir / JWT_SECRET_FILENAME
            if secret.is_file():
                tar.add(secret, arcname=JWT_SECRET_FILENAME, filter=_private)
                contents.append(JWT_SECRET_FILENAME)
            media = sdir / MEDIA_DIRNAME
            if media.is_dir():
                for path in sorted(media.glob("*/*")):
                    key = path.relative_to(media).as_posix()
                    if not _MEDIA_FILE.match(key):
                        continue  # uploads in progress, strays
                    with contextlib.suppress(FileNotFoundError):  # erased meanwhile
                        tar.add(path, arcname=f"{MEDIA_DIRNAME}/{key}", filter=_private)
                        media_files += 1
                contents.append(f"{MEDIA_DIRNAME}/ ({media_files} files)")
            tar.close()
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, output)
    size = output.stat().st_size
    emit(
        ctx,
        {
            "file": str(output),
            "size": size,
            "database": backend,
            "media_files": media_files,
            "contents": contents,
        },
        f"wrote {output} ({size} bytes): {', '.join(contents)}",
    )
