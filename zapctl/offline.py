"""Helpers for the commands that work on the database directly, without zapd."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from zapctl.errors import CliError, ExitCode

T = TypeVar("T")


# Where packaging/zapd.service keeps zapd's files on a systemd host: a shell there has
# neither STATE_DIRECTORY nor the unit's EnvironmentFile, so offline commands look here.
SYSTEM_CONFIG_DIR = Path("/etc/zap")  # ConfigurationDirectory=zap (zapd.toml, zapd.env)
SYSTEM_STATE_DIR = Path("/var/lib/zap")  # StateDirectory=zap
_STATE_MARKERS = ("zap.db", "jwt.secret")


def _env_file(path: Path) -> dict[str, str]:
    """Read the ZAP_* lines of a systemd EnvironmentFile (KEY=VALUE, # comments)."""
    out: dict[str, str] = {}
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        key, sep, value = line.strip().partition("=")
        if sep and key.startswith("ZAP_") and not key.startswith("#"):
            out[key] = value.strip().strip("'\"")
    return out


def _system_host(config_dir: Path, state_dir: Path) -> tuple[Path | None, dict[str, Any]]:
    """Return (config file, overrides) of a systemd install, or (None, {}) if none is found.

    Used only when nothing names the state dir: no --state-dir, no ZAP_STATE_DIR, no
    STATE_DIRECTORY, and no `state_dir` in the user's own config file.
    """
    toml = config_dir / "zapd.toml"
    env = _env_file(config_dir / "zapd.env")
    overrides: dict[str, Any] = {}
    if "ZAP_STATE_DIR" in env:
        overrides["state_dir"] = Path(env["ZAP_STATE_DIR"])
    elif any((state_dir / m).exists() for m in _STATE_MARKERS):
        overrides["state_dir"] = state_dir
    if "ZAP_DATABASE_URL" in env:
        overrides["database_url"] = env["ZAP_DATABASE_URL"]
    if not overrides and not toml.is_file():
        return None, {}
    return (toml if toml.is_file() else None), overrides


def resolve_db(state_dir: Path | None, db: str | None) -> tuple[Path, str]:
    """Return the state dir and database URL the offline commands act on.

    The same places zapd reads, in its order: --state-dir / --db, ZAP_STATE_DIR /
    ZAP_DATABASE_URL, STATE_DIRECTORY (systemd), the config file; and, when none of them
    names a state dir, the systemd install of packaging/zapd.service (/etc/zap/zapd.toml
    and zapd.env, /var/lib/zap), so `zapctl backup` works as root on that host.
    """
    from sqlalchemy.exc import ArgumentError

    from zapd.offline import load_settings as load
    from zapd.offline import normalize_url

    settings = load(state_dir=state_dir, database_url=db)
    named = state_dir is not None or any(
        os.environ.get(v, "").strip() for v in ("ZAP_STATE_DIR", "STATE_DIRECTORY")
    )
    if not named and "state_dir" not in settings.model_fields_set:
        config_file, system = _system_host(SYSTEM_CONFIG_DIR, SYSTEM_STATE_DIR)
        if config_file is not None or system:
            if db is not None:
                system["database_url"] = db  # --db / ZAP_DATABASE_URL still win
            settings = load(config_file=config_file, **system)
    try:
        url = normalize_url(settings.db_url)
    except (ValueError, ArgumentError) as exc:
        raise CliError(f"bad database URL: {exc}", ExitCode.USAGE) from None
    return settings.state_dir, url


def daemon_url(state_dir: Path | None) -> str | None:
    """Return the URL the zapd of `state_dir` listens on, as zapd's own settings say.

    zapd reads ZAP_HOST / ZAP_PORT, then zapd.toml, then its defaults: so does this. A
    wildcard bind (0.0.0.0, ::) is reached on loopback. None when zapd's configuration
    cannot be read or zapd listens on a Unix socket only.
    """
    from zapd.offline import load_settings

    try:
        settings = load_settings(state_dir=state_dir)
    except ValueError:
        return None
    if settings.unix_socket:
        return None
    wildcard = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}  # noqa: S104 - reached, not bound
    host = wildcard.get(settings.host, settings.host)
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if settings.tls_cert else "http"
    return f"{scheme}://{host}:{settings.port}"


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

    from shared.errors import ErrorCode
    from zapd.offline import BadRequest, NotFound, ZapError

    try:
        return asyncio.run(coro)
    except ZapError as exc:
        code = ExitCode.ERROR
        if isinstance(exc, NotFound):
            code = ExitCode.NOT_FOUND
        elif isinstance(exc, BadRequest) and exc.code == ErrorCode.USAGE:
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
