"""What every benchmark shares: a fresh database, an in-process zapd, a seeded company.

Invariants:
- A benchmark never touches data it did not create: `--db sqlite` is a temporary file;
  `--db postgres` (or a PostgreSQL URL) is a scratch database `zap_bench_<random>` made
  on that server and dropped afterwards, whatever happens (`WITH (FORCE)`); a SQLite
  URL names a file that must not exist yet, removed afterwards.
- zapd runs in this process with its real code (migrations, kernel, pipeline, API under
  uvicorn on a loopback port); background workers are not started unless a benchmark
  starts the one it measures, so nothing else competes for the database.
- Failures the user can fix are `BenchError`s: one line and an exit code (2 for bad
  input, 1 otherwise), printed by `bench.__main__`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import secrets
import tempfile
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

DEFAULT_PG_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_SERVER_ENV = "ZAP_BENCH_PG_URL"  # where `--db postgres` makes its scratch database
BENCH_PASSWORD = "bench-" + "p" * 12

log = logging.getLogger("bench")


class BenchError(Exception):
    """A failure to report as one line with an exit code (2: bad input, 1: it failed)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def usage(message: str) -> BenchError:
    """Return the error for bad input (exit code 2)."""
    return BenchError(message, 2)


# --------------------------------------------------------------------------- figures


def percentile(values: Sequence[float], q: float) -> float:
    """Return the `q` quantile (0-1) of `values` by nearest rank (0.0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def latency_ms(values: Sequence[float]) -> dict[str, float]:
    """Return p50/p95/p99/max of latencies given in seconds, in milliseconds."""
    return {
        "p50_ms": round(percentile(values, 0.50) * 1000, 2),
        "p95_ms": round(percentile(values, 0.95) * 1000, 2),
        "p99_ms": round(percentile(values, 0.99) * 1000, 2),
        "max_ms": round(max(values, default=0.0) * 1000, 2),
    }


def ratio(a: float, b: float) -> float:
    """Return a / b rounded for a report (0.0 when b is 0)."""
    return round(a / b, 3) if b else 0.0


def per_second(count: int, seconds: float) -> float:
    """Return count / seconds rounded for a report (0.0 for no time)."""
    return round(count / seconds, 1) if seconds > 0 else 0.0


def target(
    value: float, *, at_least: float | None = None, at_most: float | None = None
) -> dict[str, Any]:
    """Return a target of issue #14 and whether this run's figure meets it (not asserted)."""
    met = (at_least is None or value >= at_least) and (at_most is None or value <= at_most)
    bound = {"at_least": at_least} if at_least is not None else {"at_most": at_most}
    return {**bound, "met": met}


# --------------------------------------------------------------------------- databases


@dataclass
class Database:
    """A fresh database for one run."""

    url: str  # async SQLAlchemy URL
    kind: str  # "sqlite" | "postgresql"
    path: Path | None = None  # the SQLite file

    @property
    def dsn(self) -> str:
        """Return the URL the raw driver takes (asyncpg: without the SQLAlchemy dialect)."""
        u = make_url(self.url)
        return u.set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_server(spec: str) -> str:
    if spec in ("postgres", "postgresql", "pg"):
        return os.environ.get(PG_SERVER_ENV) or DEFAULT_PG_SERVER
    return spec


def database_kind(spec: str) -> str:
    """Check a `--db` value and return its backend; BenchError (usage) when it is none."""
    if spec == "sqlite":
        return "sqlite"
    if spec in ("postgres", "postgresql", "pg"):
        return "postgresql"
    try:
        backend = make_url(spec).get_backend_name()
    except Exception:
        backend = ""
    if backend in ("sqlite", "postgresql"):
        return backend
    raise usage(f"--db: {spec!r} is not sqlite, postgres or a sqlite:// / postgresql:// URL")


async def _pg_admin(server: str, sql: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    u = make_url(server)
    conn = await asyncpg.connect(
        host=u.host or "127.0.0.1",
        port=u.port or 5432,
        user=u.username,
        password=u.password,
        database=u.database or "postgres",
        timeout=10,
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(OSError):
            Path(f"{path}{suffix}").unlink()


@contextlib.asynccontextmanager
async def fresh_database(spec: str, workdir: Path) -> AsyncIterator[Database]:
    """Yield a database nobody else uses, removed afterwards (see the module docstring)."""
    kind = database_kind(spec)
    if kind == "sqlite":
        if spec == "sqlite":
            path = workdir / "bench.db"
        else:
            database = make_url(spec).database
            if not database or database == ":memory:":
                raise usage("--db: a SQLite URL must name a file (sqlite:////path/bench.db)")
            path = Path(database)
            if path.exists():
                raise usage(f"--db: {path} exists; the bench needs a fresh database file")
        try:
            yield Database(f"sqlite+aiosqlite:///{path}", "sqlite", path)
        finally:
            _remove_sqlite(path)
        return
    server = _pg_server(spec)
    name = f"zap_bench_{uuid.uuid4().hex[:12]}"
    try:
        await _pg_admin(server, f'CREATE DATABASE "{name}"')
    except Exception as exc:
        where = make_url(server).render_as_string(hide_password=True)
        raise BenchError(
            f"cannot create a scratch database on {where}: {type(exc).__name__}: {exc}"
        ) from None
    url = make_url(server).set(drivername="postgresql+asyncpg", database=name)
    try:
        yield Database(url.render_as_string(hide_password=False), "postgresql")
    finally:
        await _pg_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --------------------------------------------------------------------------- raw driver


class Raw:
    """One connection of the raw driver (aiosqlite or asyncpg), with zapd's SQLite pragmas.

    Statements use `?` placeholders; PostgreSQL gets them rewritten to `$n`.
    """

    def __init__(self, db: Database, conn: Any) -> None:
        self.db = db
        self.conn = conn
        self.sqlite = db.kind == "sqlite"

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, db: Database) -> AsyncIterator[Raw]:
        """Open a connection, closed on exit."""
        if db.kind == "sqlite":
            import aiosqlite

            from zapd.db.engine import SQLITE_BUSY_TIMEOUT_MS

            conn: Any = await aiosqlite.connect(str(db.path), isolation_level=None)
            for pragma in (
                "PRAGMA foreign_keys = ON",
                f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}",
                "PRAGMA synchronous = NORMAL",
                "PRAGMA journal_mode = WAL",
            ):
                await conn.execute(pragma)
        else:
            import asyncpg

            conn = await asyncpg.connect(db.dsn)
        try:
            yield cls(db, conn)
        finally:
            await conn.close()

    def sql(self, text: str) -> str:
        """Rewrite `?` placeholders for the driver."""
        if self.sqlite:
            return text
        parts = text.split("?")
        out = parts[0]
        for i, part in enumerate(parts[1:], start=1):
            out += f"${i}{part}"
        return out

    async def begin(self) -> None:
        """Start a write transaction (SQLite: BEGIN IMMEDIATE, as zapd does)."""
        await self.conn.execute("BEGIN IMMEDIATE" if self.sqlite else "BEGIN")

    async def commit(self) -> None:
        """Commit."""
        await self.conn.execute("COMMIT")

    async def execute(self, text: str, params: Sequence[Any] = ()) -> None:
        """Run one statement."""
        if self.sqlite:
            await self.conn.execute(text, tuple(params))
        else:
            await self.conn.execute(self.sql(text), *params)

    async def executemany(self, text: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for many parameter rows."""
        if self.sqlite:
            await self.conn.executemany(text, [tuple(r) for r in rows])
        else:
            await self.conn.executemany(self.sql(text), [tuple(r) for r in rows])

    async def fetch(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Return every row of a query as tuples."""
        if self.sqlite:
            async with self.conn.execute(text, tuple(params)) as cur:
                return [tuple(r) for r in await cur.fetchall()]
        return [tuple(r) for r in await self.conn.fetch(self.sql(text), *params)]


# --------------------------------------------------------------------------- zapd in process


@dataclass
class Seeded:
    """The company a run works in: its session, departments and people."""

    company_id: uuid.UUID
    session_id: uuid.UUID
    department_ids: list[uuid.UUID]
    admin_id: uuid.UUID
    admin_email: str
    agent_ids: list[uuid.UUID] = field(default_factory=list)
    agent_tokens: list[str] = field(default_factory=list)


@contextlib.asynccontextmanager
async def daemon_on(db: Database, workdir: Path, **settings: Any) -> AsyncIterator[Any]:
    """Open zapd on `db`: migrated; of its background workers, those storage itself
    relies on (the WAL checkpointer, the planner statistics' refresher)."""
    from zapd.config import ZapdSettings
    from zapd.daemon import open_daemon, settle_heap

    values: dict[str, Any] = {
        "state_dir": workdir / "state",
        "database_url": db.url,
        "auto_migrate": True,
        "jwt_secret": secrets.token_urlsafe(48),
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
        "log_level": "warning",
    }
    values.update(settings)
    daemon = await open_daemon(ZapdSettings(**values))
    before = settle_heap()  # the process as zapd's is once started (its lifespan)
    await daemon.checkpointer.start()  # the workers storage itself relies on
    await daemon.stats.start()
    try:
        yield daemon
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
        await daemon.stop_background()
        await daemon.close()  # stops the checkpointer too


async def seed_company(kernel: Any, *, agents: int = 1, departments: int = 3) -> Seeded:
    """Create a company with a greeting menu, a SANDBOX session, an admin and agents.

    Agents belong to the first department, serve without a ticket limit and get an
    access token each (for WebSocket clients).
    """
    from shared.cnpj import cnpj_check_digits
    from shared.enums import Engine, Role
    from zapd.db.models import Company, Department, User, UserDepartment, WaSession
    from zapd.services.people import auth

    tag = uuid.uuid4().hex[:8]
    base = f"{secrets.randbelow(10**8):08d}0001"
    names = ["Laboratório", "Comercial", "Financeiro", "Administrativo"]
    async with kernel.tx() as db:
        company = Company(name=f"Bench {tag}", cnpj=base + cnpj_check_digits(base))
        db.add(company)
        await db.flush()
        deps = []
        for order in range(1, departments + 1):
            name = names[order - 1] if order <= len(names) else f"Fila {order}"
            dep = Department(
                company_id=company.id, name=name, slug=f"dep{order}-{tag}", menu_order=order
            )
            db.add(dep)
            deps.append(dep)
        session = WaSession(company_id=company.id, name="bench", engine=Engine.SANDBOX)
        db.add(session)
        pw = kernel.passwords.hash(BENCH_PASSWORD)
        admin = User(
            company_id=company.id,
            email=f"admin-{tag}@bench.invalid",
            name="Bench Admin",
            role=Role.ADMIN,
            password_hash=pw,
        )
        db.add(admin)
        users = []
        for i in range(agents):
            user = User(
                company_id=company.id,
                email=f"agent{i}-{tag}@bench.invalid",
                name=f"Agente {i}",
                role=Role.AGENT,
                password_hash=pw,
                max_concurrent_tickets=1_000_000,
            )
            db.add(user)
            users.append(user)
        await db.flush()
        for user in users:
            db.add(UserDepartment(user_id=user.id, department_id=deps[0].id, company_id=company.id))
        tokens = [auth.encode_access(kernel, u, uuid.uuid4()) for u in users]
        return Seeded(
            company_id=company.id,
            session_id=session.id,
            department_ids=[d.id for d in deps],
            admin_id=admin.id,
            admin_email=admin.email,
            agent_ids=[u.id for u in users],
            agent_tokens=tokens,
        )


@contextlib.asynccontextmanager
async def serving(daemon: Any) -> AsyncIterator[str]:
    """Serve the daemon's API with uvicorn on a loopback port; yield its base URL.

    The app's lifespan is not run: it would start the daemon's background work (the
    outbox worker retrying the greeting menus on a session no engine runs, the
    scheduler...), which writes beside what a benchmark measures. What start-up built
    is frozen out of the garbage collector's scans, as zapd's lifespan does.
    """
    import uvicorn

    from zapd.api.app import create_app
    from zapd.daemon import settle_heap

    settings = daemon.settings
    app = create_app(settings, daemon)
    app.state.daemon = daemon  # what the lifespan would have set
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            lifespan="off",
            log_config=None,  # no log_level either: uvicorn would set its loggers' levels
            access_log=False,  # process-wide, and they would outlive the benchmark
            proxy_headers=False,
            timeout_graceful_shutdown=5,
            ws_ping_interval=settings.ws_ping_interval,
            ws_ping_timeout=settings.ws_ping_timeout,
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise BenchError("the bench's zapd stopped before serving")
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        settle_heap()  # as zapd does once started (its lifespan)
        yield f"http://127.0.0.1:{port}"
    finally:
        gc.unfreeze()
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 30)


@contextlib.contextmanager
def workdir() -> Any:
    """A temporary directory for the run's state dir and SQLite file."""
    with tempfile.TemporaryDirectory(prefix="zap-bench-") as tmp:
        yield Path(tmp)
