"""Every engine passes the same conformance suite (tests/zapd/connectors/conformance.py).

To add an engine: write its `EngineAdapter` here (or beside its own tests) and append it
to `ADAPTERS`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.wajs_page.server import Device, FakeWhatsAppWeb, c_us
from tests.zapd.connectors.conformance import (
    EngineAdapter,
    Recorder,
    check_lifecycle,
    check_messages,
)
from tests.zapd.connectors.webjs.harness import (
    browsers_under,
    eventually,
    require_chromium,
    webjs_settings,
)
from zapd.connectors.base import Connector
from zapd.connectors.events import QrEvent
from zapd.connectors.sandbox import AckTiming, SandboxConnector, SandboxNetwork
from zapd.connectors.webjs.connector import WebjsConnector
from zapd.connectors.webjs.driver import WebjsDriver


class SandboxAdapter(EngineAdapter):
    """The in-process simulated network; it produces its acks itself, shuffled."""

    name = "sandbox"

    async def setup(self, tmp_path: Path) -> None:
        timing = AckTiming(sent=0.01, delivered=0.02, read=0.03, jitter=0.01, shuffle=True)
        self.net = SandboxNetwork(timing, seed=7)

    async def teardown(self) -> None:
        await self.net.close()

    def connector(self, session_id: uuid.UUID, sink: Recorder) -> Connector:
        return SandboxConnector(session_id, self.net, sink)

    async def link(self, conn: Connector, sink: Recorder) -> str:
        await eventually(lambda: sink.of(QrEvent))
        return await self.net.scan(conn.session_id, "+5511930000001")

    async def customer_says(self, conn: Connector, phone: str, text: str) -> str:
        event = await self.net.customer_says(conn.session_id, phone, text)
        return event.wa_message_id

    async def deliver_acks(self, conn: Connector, wa_id: str) -> None:
        return  # the network sends SENT, DELIVERED and READ by itself, in shuffled order

    def received(self, conn: Connector, phone: str) -> list[str | None]:
        return [d.body for d in self.net.inbox(conn.session_id, phone)]

    async def wait(self, check: Any, within: float = 30.0) -> Any:
        return await eventually(check, within)


class WebjsAdapter(EngineAdapter):
    """Real Chromium on the fake WhatsApp Web page, the pinned wa-js injected."""

    name = "webjs"

    async def setup(self, tmp_path: Path) -> None:
        require_chromium()
        self.tmp = tmp_path
        self.fake = FakeWhatsAppWeb()
        await self.fake.start()
        self.driver = WebjsDriver(webjs_settings(tmp_path, self.fake.url))
        self.devices: dict[uuid.UUID, Device] = {}

    async def teardown(self) -> None:
        await self.driver.shutdown()
        await self.fake.stop()
        assert browsers_under(self.tmp) == []

    def connector(self, session_id: uuid.UUID, sink: Recorder) -> Connector:
        return WebjsConnector(session_id, self.driver, sink)

    async def link(self, conn: Connector, sink: Recorder) -> str:
        qr = await eventually(lambda: sink.of(QrEvent))
        phone = "+5511930000002"
        self.devices[conn.session_id] = await self.fake.scan(qr[-1].qr, phone)
        return phone

    async def customer_says(self, conn: Connector, phone: str, text: str) -> str:
        raw = await self.fake.customer_says(self.devices[conn.session_id], phone, text, twice=True)
        return str(raw["id"])

    async def deliver_acks(self, conn: Connector, wa_id: str) -> None:
        device = self.devices[conn.session_id]
        for ack in (3, 1, 2):  # READ first, as WhatsApp sometimes reports it
            await self.fake.ack(device, wa_id, ack)
            await asyncio.sleep(0.02)

    def received(self, conn: Connector, phone: str) -> list[str | None]:
        device = self.devices[conn.session_id]
        return [m.get("body") for m in device.sent if m["to"] == c_us(phone)]

    async def wait(self, check: Any, within: float = 30.0) -> Any:
        return await eventually(check, within)


ADAPTERS: list[type[EngineAdapter]] = [SandboxAdapter, WebjsAdapter]


@pytest.fixture(params=ADAPTERS, ids=lambda cls: cls.name)
async def adapter(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EngineAdapter]:
    engine: EngineAdapter = request.param()
    await engine.setup(tmp_path)
    try:
        yield engine
    finally:
        await engine.teardown()


async def test_lifecycle(adapter: EngineAdapter) -> None:
    await check_lifecycle(adapter)


async def test_messages_idempotent_send_and_forward_only_acks(adapter: EngineAdapter) -> None:
    await check_messages(adapter)
