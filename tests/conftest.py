"""Test fixtures: every database test runs on SQLite and on the real PostgreSQL.

Isolation: SQLite gets a fresh file per test; PostgreSQL gets a fresh schema per test
(search_path pinned on every pooled connection), dropped afterwards. Tests that start
a separate process (zapd, zapctl) get a fresh PostgreSQL *database* instead, since a
URL cannot carry a search_path for asyncpg. With CI=true an unreachable PostgreSQL
stops the run as a failure, never a skip.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

PG_URL = os.environ.get("ZAP_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

_pg_error: str | None = None


async def _pg_probe() -> str | None:
    import asyncpg

    url = make_url(PG_URL)
    try:
        conn = await asyncpg.connect(
            host=url.host,
            port=url.port or 5432,
            user=url.username,
            password=url.password,
            database=url.database,
            timeout=5,
        )
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


def pytest_sessionstart(session: pytest.Session) -> None:
    global _pg_error
    _pg_error = asyncio.run(_pg_probe())
    if _pg_error and IN_CI:
        pytest.exit(f"PostgreSQL unreachable at {PG_URL} with CI=true: {_pg_error}", returncode=1)


def pytest_report_header() -> str:
    return f"postgresql: {PG_URL} ({'reachable' if not _pg_error else 'UNREACHABLE: ' + _pg_error})"


def require_pg() -> None:
    """Skip (locally) when PostgreSQL is down; in CI the session already failed."""
    if _pg_error:
        pytest.skip(f"PostgreSQL unreachable: {_pg_error}")


async def _pg_admin(sql: str) -> None:
    import asyncpg

    url = make_url(PG_URL)
    conn = await asyncpg.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        database=url.database,
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@dataclass
class Backend:
    """One database a test runs against."""

    name: str  # "sqlite" | "postgresql"
    url: str
    engine_kwargs: dict[str, Any] = field(default_factory=dict)

    def engine(self) -> AsyncEngine:
        from zapd.db.engine import create_engine

        return create_engine(self.url, **self.engine_kwargs)


BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """An empty database on each backend: a SQLite file, or a PostgreSQL schema."""
    if request.param == "sqlite":
        yield Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
        return
    require_pg()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    await _pg_admin(f'CREATE SCHEMA "{schema}"')
    try:
        yield Backend(
            "postgresql",
            PG_URL,
            {"connect_args": {"server_settings": {"search_path": schema}}},
        )
    finally:
        await _pg_admin(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A URL another process can open: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'proc.db'}"
        return
    require_pg()
    name = f"zt_{uuid.uuid4().hex[:16]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def engine(backend: Backend) -> AsyncIterator[AsyncEngine]:
    """An engine on a database holding the whole schema."""
    from zapd.db.models import Base

    eng = backend.engine()
    async with eng.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
async def db(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session on the schema'd database."""
    from zapd.db.engine import session_factory

    async with session_factory(engine)() as session:
        yield session


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Point HOME and the XDG/systemd dirs at a temp dir and drop ZAP_* variables."""
    for key in list(os.environ):
        if key.startswith("ZAP_") or key in (
            "STATE_DIRECTORY",
            "CONFIGURATION_DIRECTORY",
            "XDG_STATE_HOME",
            "XDG_CONFIG_HOME",
        ):
            monkeypatch.delenv(key, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    yield home
