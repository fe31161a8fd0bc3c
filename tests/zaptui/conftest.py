"""What the zaptui tests share: a real zapd on loopback with a sandbox session, and apps.

`tui_zapd` serves the real daemon (uvicorn, real HTTP and WebSockets) on an ephemeral
127.0.0.1 port, on SQLite, with a tenant seeded (company, admin, supervisor, two agents)
and a SANDBOX session linked. It can be stopped and started again on the same port and
database (`await tui_zapd.restart()` / `stop()` / `start()`), which is how the resilience
tests cut the app off.

Apps are built with `make_app(...)` (see `zaptui.app`): the usual pattern is

    app = make_app(tui_settings(tui_zapd), credentials=memory_store)
    async with app.run_test(size=(120, 36)) as pilot:
        await login(pilot, tui_zapd.agent_email)
        ...

The token store is isolated per test (`XDG_CONFIG_HOME` in tmp, keyring disabled).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import Backend
from tests.zapd.api.conftest import PASSWORD, Live, Tenant, start_live, test_settings
from tests.zapd.api.test_conversation import connected_session
from zapd.config import ZapdSettings

__all__ = ["PASSWORD", "TuiZapd", "wait_until"]


async def wait_until(
    predicate: Callable[[], Any], within: float = 10.0, pause: float = 0.05
) -> Any:
    """Poll `predicate` (sync or async) until truthy; fail the test after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = predicate()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(pause)


@dataclass
class TuiZapd:
    """A zapd on loopback that a test can stop and start again (same port, same data)."""

    engine: AsyncEngine
    settings: ZapdSettings
    live: Live | None = None
    tenant: Tenant | None = None
    session_id: str = ""
    port: int = 0
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None
    _old: list[Live] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def t(self) -> Tenant:
        assert self.tenant is not None
        return self.tenant

    @property
    def agent_email(self) -> str:
        return self.t.emails["agent"]

    async def start(self) -> None:
        """Serve (again) on the same port and database."""
        settings = self.settings
        if self.port:
            settings = settings.model_copy(update={"port": self.port})
        live, server, task = await _serve(self.engine, settings, self.port)
        self.live, self._server, self._task = live, server, task
        self.port = int(live.url.rsplit(":", 1)[1])

    async def stop(self) -> None:
        """Stop serving: connections close, new ones are refused."""
        assert self._server is not None and self._task is not None and self.live is not None
        self._server.should_exit = True
        await asyncio.wait_for(self._task, 90)  # generous: CI machines can be very busy
        await self.live.daemon.hub.close_all()
        self._old.append(self.live)
        self._server = self._task = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def say(self, phone: str, text: str, **kw: Any) -> dict[str, Any]:
        """Make a simulated customer send `text` to the sandbox session."""
        # A fresh connection: the tenant's pooled ones die with a restart.
        headers = {"Authorization": self.t.admin.headers["Authorization"]}
        async with httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30) as http:
            r = await http.post(
                f"/api/v1/sandbox/{self.session_id}/inbound",
                json={"from": phone, "text": text, **kw},
            )
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def close(self) -> None:
        if self._server is not None:
            await self.stop()
        for lv in self._old:
            await lv.close()


async def _serve(
    engine: AsyncEngine, settings: ZapdSettings, port: int
) -> tuple[Live, uvicorn.Server, asyncio.Task[None]]:
    if not port:
        return await start_live(engine, "sqlite", settings)
    # Same port again: the port a client keeps reconnecting to.
    import tests.zapd.api.conftest as api_conftest

    orig = uvicorn.Config

    def pinned(*args: Any, **kw: Any) -> uvicorn.Config:
        kw["port"] = port
        return orig(*args, **kw)

    api_conftest.uvicorn.Config = pinned  # type: ignore[misc]
    try:
        return await start_live(engine, "sqlite", settings)
    finally:
        api_conftest.uvicorn.Config = orig  # type: ignore[misc]


@pytest.fixture
def tui_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated config dir (token store file) and no OS keyring."""
    home = tmp_path / "home"
    home.mkdir()
    for key in list(os.environ):
        if key.startswith("ZAP_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    return home


@pytest.fixture
async def tui_zapd(tmp_path: Path, tui_home: Path) -> AsyncIterator[TuiZapd]:
    """A real zapd on loopback (SQLite) with a tenant and a linked sandbox session."""
    from zapd.db.models import Base

    backend = Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'tui.db'}")
    engine = backend.engine()
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    z = TuiZapd(engine, test_settings(tmp_path))
    try:
        await z.start()
        assert z.live is not None
        z.tenant = await z.live.tenant()
        z.session_id = await connected_session(z.live, z.tenant)
        yield z
    finally:
        await z.close()
        await engine.dispose()
