"""Helpers for the commands that work on the database directly, without zapd."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from zapctl.errors import CliError, ExitCode

T = TypeVar("T")


def resolve_db(state_dir: Path | None, db: str | None) -> tuple[Path, str]:
    """Return the state dir and database URL the offline commands act on."""
    from sqlalchemy.exc import ArgumentError

    from zapd.offline import load_settings as load
    from zapd.offline import normalize_url

    settings = load(state_dir=state_dir, database_url=db)
    try:
        url = normalize_url(settings.db_url)
    except (ValueError, ArgumentError) as exc:
        raise CliError(f"bad database URL: {exc}", ExitCode.USAGE) from None
    return settings.state_dir, url


def require_directory(url: str, will_create: Path | None = None) -> None:
    """Refuse a SQLite file whose directory does not exist, before the driver tries it.

    aiosqlite's worker thread can print a traceback of its own when the file cannot
    be opened; checking first keeps the failure to one line. `will_create` is a
    directory the command is about to create (init's state dir).
    """
    from zapd.offline import sqlite_path

    path = sqlite_path(url)
    if path is None or (will_create is not None and path.parent.resolve() == will_create):
        return
    if not path.parent.is_dir():
        raise CliError(f"cannot open the database: directory {path.parent} does not exist")


def require_existing(url: str) -> None:
    """Refuse to open a SQLite file that does not exist (read-only commands create nothing)."""
    from zapd.offline import sqlite_path

    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise CliError(f"no database at {path} (run: zapctl init or zapctl db upgrade)")


def describe_diff(item: object) -> list[str]:
    """Render one Alembic autogenerate difference as short strings."""
    if isinstance(item, tuple) and item:
        op = str(item[0])
        rest = [getattr(x, "name", None) or str(x) for x in item[1:] if x is not None]
        return [op, *[r for r in rest if not r.startswith("<")][:3]]
    if isinstance(item, list):  # column modifications come grouped
        return [s for sub in item for s in describe_diff(sub)][:4]
    return [type(item).__name__]


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine, turning database and zap errors into one-line CLI errors.

    Not found exits 3, a usage problem 2, anything else 1.
    """
    from sqlalchemy.exc import DBAPIError, OperationalError

    from zapd.offline import BadRequest, NotFound, ZapError

    try:
        return asyncio.run(coro)
    except ZapError as exc:
        code = ExitCode.ERROR
        if isinstance(exc, NotFound):
            code = ExitCode.NOT_FOUND
        elif isinstance(exc, BadRequest) and exc.code == "ERR_USAGE":
            code = ExitCode.USAGE
        raise CliError(exc.message, code) from exc
    except (OperationalError, DBAPIError, OSError) as exc:
        detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise CliError(f"cannot open the database: {detail}") from exc


def safe_url(url: str) -> str:
    """Return the URL with any password masked."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def open_database(state_dir: Path | None, db: str | None) -> tuple[Path, str]:
    """Return the state dir and URL of an existing database (exit 1 if there is none)."""
    sdir, url = resolve_db(state_dir, db)
    require_existing(url)
    return sdir, url
