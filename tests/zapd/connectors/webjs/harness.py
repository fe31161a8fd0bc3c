"""What the webjs tests share: the browser requirement, settings, a daemon on a test DB.

Chromium is required, never optional: a missing browser FAILS these tests (CI installs
Debian's `chromium` through ./dev). The wa-js bundle must be the pinned one (./dev setup).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.cnpj import cnpj_check_digits
from shared.enums import Engine, SessionStatus
from tests.fakes.wajs_page.server import FakeWhatsAppWeb
from zapd.config import ZapdSettings
from zapd.connectors.webjs import procs
from zapd.connectors.webjs.driver import EngineUnavailable, chromium_path
from zapd.daemon import Daemon as ZapDaemon
from zapd.daemon import open_daemon
from zapd.db.models import Company, Message, WaSession

_cnpj = itertools.count(31_000_000)


def require_chromium() -> str:
    """Return the browser path, failing the test (not skipping) when there is none."""
    explicit = os.environ.get("ZAP_CHROMIUM")
    try:
        return chromium_path(Path(explicit) if explicit else None)
    except EngineUnavailable as exc:
        pytest.fail(f"the webjs tests need Chromium: {exc}")


@pytest.fixture
async def fake() -> AsyncIterator[FakeWhatsAppWeb]:
    """The contract fake of WhatsApp Web (wa-js's surface) on loopback; Chromium required."""
    require_chromium()
    server = FakeWhatsAppWeb()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def webjs_settings(tmp_path: Path, url: str, **overrides: Any) -> ZapdSettings:
    """Settings for an in-test daemon whose webjs engine opens the fake page at `url`."""
    explicit = os.environ.get("ZAP_CHROMIUM")
    values: dict[str, Any] = {
        "state_dir": tmp_path / "state",
        "database_url": "sqlite+aiosqlite:///unused",
        "auto_migrate": False,
        "jwt_secret": "test-secret-" + "x" * 40,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 64,
        "chromium": explicit or None,
        "webjs_url": url,
        "webjs_heartbeat_seconds": 1.0,
        "webjs_ready_timeout": 30.0,
        "webjs_restart_backoff_base": 0.2,
        "webjs_restart_backoff_cap": 1.0,
        "webjs_start_concurrency": 3,
        "outbox_jitter_ms": 0,
        "outbox_rate_per_second": 50.0,
        "outbox_burst": 50,
        "outbox_poll_interval": 0.05,
        "outbox_backoff_base": 0.2,
        "outbox_backoff_cap": 1.0,
    }
    values.update(overrides)
    return ZapdSettings(**values)


def browsers_under(root: Path) -> list[int]:
    """Return live processes whose command line mentions `root` (browsers of the test)."""
    needle = str(root)
    out = []
    for pid in procs.pids():
        try:
            raw = (procs.PROC / str(pid) / "cmdline").read_bytes()
        except OSError:
            continue
        if needle.encode() in raw and procs.alive(pid) and pid != os.getpid():
            out.append(pid)
    return out


def _engine_tasks() -> str:
    """Where each webjs task is waiting (for the message of a timed-out wait)."""
    out = []
    for task in asyncio.all_tasks():
        if not task.get_name().startswith("webjs"):
            continue
        frames = task.get_stack(limit=8)
        where = " <- ".join(f"{f.f_code.co_name}:{f.f_lineno}" for f in reversed(frames))
        out.append(f"{task.get_name()}: {where}")
    return "\n".join(out)


async def eventually(check: Callable[[], Any], within: float = 30.0, every: float = 0.1) -> Any:
    """Wait until `check()` (sync or async) returns something truthy; return it."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within}s\n{_engine_tasks()}")
        await asyncio.sleep(every)


class Daemon:
    """zapd's long-lived parts (zapd.daemon.Daemon) on the test's database, restartable."""

    def __init__(self, engine: AsyncEngine, settings: ZapdSettings) -> None:
        self.engine = engine
        self.settings = settings
        self.res: ZapDaemon | None = None
        self.company_id: uuid.UUID | None = None

    async def open(self) -> ZapDaemon:
        self.res = await open_daemon(self.settings, engine=self.engine)
        await self.res.start_background()
        return self.res

    async def close(self) -> None:
        if self.res is not None:
            await self.res.stop_background()
            await self.res.hub.close_all()
            self.res = None

    @property
    def r(self) -> ZapDaemon:
        assert self.res is not None
        return self.res

    async def company(self) -> uuid.UUID:
        if self.company_id is None:
            base = f"{next(_cnpj):08d}0001"
            async with self.r.kernel.tx() as db:
                company = Company(name="Webjs Ltda", cnpj=base + cnpj_check_digits(base))
                db.add(company)
                await db.flush()
                self.company_id = company.id
        return self.company_id

    async def add_session(self, name: str) -> uuid.UUID:
        company_id = await self.company()
        async with self.r.kernel.tx() as db:
            row = WaSession(company_id=company_id, name=name, engine=Engine.WEBJS)
            db.add(row)
            await db.flush()
            return row.id

    async def session(self, session_id: uuid.UUID) -> WaSession:
        async with self.r.kernel.read() as db:
            row = await db.get(WaSession, session_id)
            assert row is not None
            return row

    async def wait_status(
        self, session_id: uuid.UUID, status: SessionStatus, within: float = 40.0
    ) -> WaSession:
        async def check() -> WaSession | None:
            row = await self.session(session_id)
            return row if row.status == status else None

        return await eventually(check, within)  # type: ignore[no-any-return]

    async def wait_qr(self, session_id: uuid.UUID, within: float = 40.0) -> str:
        async def check() -> str | None:
            row = await self.session(session_id)
            return row.qr_code if row.status == SessionStatus.WAITING_QR else None

        try:
            return await eventually(check, within)  # type: ignore[no-any-return]
        except AssertionError as exc:
            row = await self.session(session_id)
            conn = self.r.engines.connector(session_id)
            seen = getattr(conn, "_qr_refs", None)
            page = getattr(conn, "page", None)
            code = await page.evaluate("() => WPP.conn.getAuthCode()") if page else None
            raise AssertionError(
                f"{exc}\nrow: {row.status!r} qr={row.qr_code!r}; engine: "
                f"{getattr(conn, 'status', None)!r} refs={seen}; page code: {code}"
            ) from None

    async def messages(self, session_id: uuid.UUID, **where: Any) -> list[Message]:
        async with self.r.kernel.read() as db:
            stmt = select(Message).where(Message.session_id == session_id)
            for key, value in where.items():
                stmt = stmt.where(getattr(Message, key) == value)
            return list((await db.scalars(stmt.order_by(Message.id))).all())

    async def count_messages(self, session_id: uuid.UUID) -> int:
        async with self.r.kernel.read() as db:
            return int(
                await db.scalar(
                    select(func.count())
                    .select_from(Message)
                    .where(Message.session_id == session_id)
                )
                or 0
            )
