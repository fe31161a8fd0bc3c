"""A real zapd on a loopback port per test, on each backend, with seeded tenants.

`live` serves the real app through uvicorn (real HTTP, real WebSockets) bound to an
ephemeral 127.0.0.1 port, on the test's own database (SQLite file or PostgreSQL
schema). `tenant()` creates a company with an admin, a supervisor and two agents
(the first agent in "Laboratório", the second in "Comercial") and logs them in.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.cnpj import cnpj_check_digits
from shared.enums import Role
from zapd.api.app import create_app
from zapd.config import ZapdSettings
from zapd.daemon import Daemon, open_daemon
from zapd.db.models import Company, Department, User, UserDepartment
from zapd.kernel.context import Kernel

PASSWORD = "s3cret-pass"
_seq = itertools.count(20_000_000)


def new_cnpj() -> str:
    """Return a fresh valid CNPJ."""
    base = f"{next(_seq):08d}0001"
    return base + cnpj_check_digits(base)


@dataclass
class Tenant:
    """A seeded company: ids and a logged-in client per person."""

    company_id: uuid.UUID
    lab_id: uuid.UUID
    sales_id: uuid.UUID
    users: dict[str, uuid.UUID]  # "admin", "supervisor", "agent", "agent2" -> id
    emails: dict[str, str]
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)

    @property
    def admin(self) -> httpx.AsyncClient:
        return self.clients["admin"]

    @property
    def supervisor(self) -> httpx.AsyncClient:
        return self.clients["supervisor"]

    @property
    def agent(self) -> httpx.AsyncClient:
        return self.clients["agent"]


@dataclass
class Live:
    """A running zapd: base URL, its daemon (and kernel), and helpers to seed and log in."""

    url: str
    daemon: Daemon
    backend: str
    _clients: list[httpx.AsyncClient] = field(default_factory=list)
    root: httpx.AsyncClient | None = None  # logged in as the global admin

    @property
    def kernel(self) -> Kernel:
        """Return the kernel services receive (what tests seed through)."""
        return self.daemon.kernel

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/api/v1/ws"

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        """Return an HTTP client on the daemon, with a bearer token if given."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        c = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)
        self._clients.append(c)
        return c

    async def login(
        self, email: str, password: str = PASSWORD
    ) -> tuple[httpx.AsyncClient, dict[str, Any]]:
        """Log in through the API; return an authorised client and the token pair."""
        r = await self.client().post(
            "/api/v1/auth/login", json={"email": email, "password": password}
        )
        assert r.status_code == 200, r.text
        pair = r.json()
        return self.client(pair["access_token"]), pair

    async def add_user(
        self,
        company_id: uuid.UUID | None,
        email: str,
        role: Role | None,
        name: str,
        departments: list[uuid.UUID] = (),  # type: ignore[assignment]
    ) -> uuid.UUID:
        """Insert a user directly in the database (API tests of /users create through HTTP)."""
        async with self.kernel.tx() as db:
            user = User(
                company_id=company_id,
                email=email,
                role=role,
                name=name,
                password_hash=self.kernel.passwords.hash(PASSWORD),
            )
            db.add(user)
            await db.flush()
            for dep in departments:
                db.add(UserDepartment(user_id=user.id, department_id=dep, company_id=company_id))
            return user.id

    async def tenant(self, name: str = "Acme") -> Tenant:
        """Create a company with people and two departments, everyone logged in."""
        tag = next(_seq)
        async with self.kernel.tx() as db:
            company = Company(name=f"{name} {tag}", cnpj=new_cnpj())
            db.add(company)
            await db.flush()
            lab = Department(
                company_id=company.id,
                name="Laboratório",
                slug="laboratorio",
                menu_order=1,
                keywords=["exame"],
            )
            sales = Department(
                company_id=company.id, name="Comercial", slug="comercial", menu_order=2
            )
            db.add_all([lab, sales])
            await db.flush()
            cid, lab_id, sales_id = company.id, lab.id, sales.id
        people = {
            "admin": (Role.ADMIN, []),
            "supervisor": (Role.SUPERVISOR, []),
            "agent": (Role.AGENT, [lab_id]),
            "agent2": (Role.AGENT, [sales_id]),
        }
        t = Tenant(cid, lab_id, sales_id, users={}, emails={})
        for key, (role, deps) in people.items():
            email = f"{key}.{tag}@acme.com.br"
            t.emails[key] = email
            t.users[key] = await self.add_user(cid, email, role, key.title(), deps)
            t.clients[key], _ = await self.login(email)
        return t

    async def close(self) -> None:
        for c in self._clients:
            await c.aclose()


def test_settings(tmp_path: Path, **overrides: Any) -> ZapdSettings:
    """Settings for an in-test daemon: cheap argon2, fixed secret, no migrations."""
    values: dict[str, Any] = {
        "state_dir": tmp_path / "state",
        "database_url": "sqlite+aiosqlite:///unused",
        "auto_migrate": False,
        "jwt_secret": "test-secret-" + "x" * 40,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 64,
        "ws_ping_interval": 5.0,
        "ws_ping_timeout": 5.0,
    }
    values.update(overrides)
    return ZapdSettings(**values)


async def start_live(
    engine: AsyncEngine, backend: str, settings: ZapdSettings
) -> tuple[Live, uvicorn.Server, asyncio.Task[None]]:
    """Serve the app on an ephemeral loopback port and wait until it listens."""
    daemon = await open_daemon(settings, engine=engine)
    app = create_app(settings, daemon)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            lifespan="on",
            log_config=None,
            access_log=False,
            ws_ping_interval=settings.ws_ping_interval,
            ws_ping_timeout=settings.ws_ping_timeout,
            timeout_graceful_shutdown=5,
        )
    )
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return Live(f"http://127.0.0.1:{port}", daemon, backend), server, task


async def stop_live(
    lv: Live, server: uvicorn.Server, task: asyncio.Task[None], within: float = 15
) -> None:
    """Undo `start_live`: close the test clients, stop serving, drop the sockets."""
    await lv.close()
    server.should_exit = True
    await asyncio.wait_for(task, within)
    await lv.daemon.hub.close_all()


@asynccontextmanager
async def serving(
    engine: AsyncEngine, backend: Any, settings: ZapdSettings, *, root: bool = False
) -> AsyncIterator[Live]:
    """`start_live` ... `stop_live` around a block; with `root`, a logged-in global admin."""
    lv, server, task = await start_live(engine, backend.name, settings)
    try:
        if root:
            await lv.add_user(None, "root@zap.local", None, "Root")
            lv.root, _ = await lv.login("root@zap.local")
        yield lv
    finally:
        await stop_live(lv, server, task)


@pytest.fixture
async def live(engine: AsyncEngine, backend: Any, tmp_path: Path) -> AsyncIterator[Live]:
    """A zapd serving on loopback, with a logged-in global admin as `live.root`."""
    async with serving(engine, backend, test_settings(tmp_path), root=True) as lv:
        yield lv
