"""Helpers for the commands that work on the database directly, without zapd."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from zapctl.errors import CliError

T = TypeVar("T")


def resolve_db(state_dir: Path | None, db: str | None) -> tuple[Path, str]:
    """Return the state dir and database URL the offline commands act on."""
    from zapd.config import load

    settings = load(state_dir=state_dir, database_url=db)
    return settings.state_dir, settings.db_url


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine, turning database and zap errors into one-line CLI errors."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    from zapd.errors import Conflict, ZapError

    try:
        return asyncio.run(coro)
    except Conflict as exc:
        raise CliError(exc.message) from exc
    except ZapError as exc:
        raise CliError(exc.message) from exc
    except (OperationalError, DBAPIError, OSError) as exc:
        detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise CliError(f"cannot open the database: {detail}") from exc


def safe_url(url: str) -> str:
    """Return the URL with any password masked."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
