"""Every engine passes the same conformance suite (tests/zapd/connectors/conformance.py).

To add an engine: write its `EngineAdapter` here (or beside its own tests) and append it
to `ADAPTERS`.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.graph_api import FakeGraph, contact, inbound, status
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
from zapd.connectors.cloud import webhook
from zapd.connectors.cloud.connector import CloudConnector
from zapd.connectors.cloud.graph import CloudSettings
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


class CloudAdapter(EngineAdapter):
    """Meta's Cloud API: the contract fake Graph API records sends and signs webhooks.

    Inbound traffic never passes through a Cloud connector: Meta POSTs it, signed, to
    zapd's webhook route. The adapter serves the engine half of that route on loopback
    (the signature check and `webhook.parse`, the same functions zapd's route and
    processor use) and feeds the events to the session's sink; storing and deduping
    the raw body is the daemon's part, tested in tests/zapd/services/.
    """

    name = "cloud"
    needs_qr = False  # a Cloud API number is linked in Meta's dashboard, not by QR

    async def setup(self, tmp_path: Path) -> None:
        self.fake = await FakeGraph().start()
        self.sinks: dict[uuid.UUID, Recorder] = {}
        self.refused = 0

        async def receive(request: Request) -> JSONResponse:
            body = await request.body()
            if not webhook.signature_ok(
                self.fake.app_secret, body, request.headers.get(webhook.SIGNATURE_HEADER)
            ):
                self.refused += 1
                return JSONResponse({"error": "ERR_UNAUTHORIZED"}, status_code=401)
            session_id = uuid.UUID(request.path_params["session_id"])
            for event in webhook.parse(json.loads(body), session_id, datetime.now(UTC)):
                await self.sinks[session_id](event)
            return JSONResponse({"status": "stored"})

        app = Starlette(routes=[Route("/webhooks/cloud/{session_id}", receive, methods=["POST"])])
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=0,
                log_config=None,
                access_log=False,
            )
        )
        self.serving = asyncio.create_task(self.server.serve())
        await eventually(lambda: self.server.started or self.serving.done())
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/webhooks/cloud"

    async def teardown(self) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(self.serving, 10)
        await self.fake.stop()
        assert self.refused == 0  # every webhook the suite delivered was signed right

    def connector(self, session_id: uuid.UUID, sink: Recorder) -> Connector:
        self.sinks[session_id] = sink
        settings = CloudSettings.from_config(
            {
                "phone_number_id": self.fake.phone_number_id,
                "access_token": self.fake.access_token,
                "business_account_id": self.fake.waba_id,
                "app_secret": self.fake.app_secret,
                "base_url": self.fake.url,
            }
        )
        return CloudConnector(session_id, settings, sink)

    async def link(self, conn: Connector, sink: Recorder) -> str:
        return "+551140001000"  # the fake number's display phone, learnt at start

    async def _deliver(self, conn: Connector, doc: dict[str, Any]) -> None:
        answer = await self.fake.deliver(f"{self.url}/{conn.session_id}", doc)
        assert answer.status_code == 200, answer.text

    async def customer_says(self, conn: Connector, phone: str, text: str) -> str:
        digits = phone.lstrip("+")
        msg = inbound("text", {"body": text}, sender=digits)
        await self._deliver(
            conn, self.fake.webhook(messages=[msg], contacts=[contact(digits, "Cliente")])
        )
        return str(msg["id"])

    async def deliver_acks(self, conn: Connector, wa_id: str) -> None:
        sent = self.fake.by_wamid[wa_id]
        for state in ("read", "sent", "delivered"):  # one webhook each, READ first
            await self._deliver(
                conn, self.fake.webhook(statuses=[status(wa_id, state, recipient=sent["to"])])
            )

    def received(self, conn: Connector, phone: str) -> list[str | None]:
        digits = phone.lstrip("+")
        return [m.get("text", {}).get("body") for m in self.fake.sent if m.get("to") == digits]

    async def wait(self, check: Any, within: float = 30.0) -> Any:
        return await eventually(check, within)


ADAPTERS: list[type[EngineAdapter]] = [SandboxAdapter, WebjsAdapter, CloudAdapter]


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
