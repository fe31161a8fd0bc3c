"""A customer's typing, end to end: WhatsApp Web (the fake page, wa-js injected, in real
Chromium) -> the webjs connector -> the session manager -> the realtime stream of the
agents who can see the ticket, and of nobody else. Both backends.

The Cloud API has no such signal (Meta sends no typing webhook), the sandbox none either.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.client import ZapClient
from shared.enums import SessionStatus
from shared.protocol.events import TYPING
from tests.fakes.wajs_page.server import FakeWhatsAppWeb
from tests.zapd.api.conftest import PASSWORD, Live, start_live, stop_live
from tests.zapd.connectors.webjs.harness import eventually, webjs_settings
from tests.zapd.connectors.webjs.harness import fake as fake  # the fixture, shared

CUSTOMER = "+5521998760001"


@pytest.fixture
async def webjs_live(
    engine: AsyncEngine, backend: Any, tmp_path: Path, fake: FakeWhatsAppWeb
) -> AsyncIterator[Live]:
    lv, server, task = await start_live(engine, backend.name, webjs_settings(tmp_path, fake.url))
    try:
        yield lv
    finally:
        await stop_live(lv, server, task, within=30)  # browsers take longer to stop


class Stream:
    """One person's realtime stream, keeping the typing events it receives."""

    def __init__(self, url: str, email: str) -> None:
        self.url, self.email = url, email
        self.typing: list[dict[str, Any]] = []
        self.ready = asyncio.Event()

    async def run(self) -> None:
        async with ZapClient(self.url) as zap:
            await zap.login(self.email, PASSWORD)
            async with zap.subscribe() as sub:
                await eventually(lambda: sub.connected)
                self.ready.set()
                async for event in sub:
                    if event.type == TYPING:
                        self.typing.append(event.data)


async def test_customer_typing_reaches_only_who_sees_the_ticket(
    webjs_live: Live, fake: FakeWhatsAppWeb
) -> None:
    live = webjs_live
    t = await live.tenant()
    r = await t.admin.post("/api/v1/sessions", json={"name": "Loja", "engine": 1})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    assert (await t.admin.post(f"/api/v1/sessions/{sid}/start")).status_code == 202

    async def qr() -> str | None:
        return (await t.admin.get(f"/api/v1/sessions/{sid}/qr")).json()["qr"]

    device = await fake.scan(await eventually(qr, 40), "+5511940009999")

    async def connected() -> bool:
        body = (await t.admin.get(f"/api/v1/sessions/{sid}")).json()
        return bool(body["status"] == SessionStatus.CONNECTED)

    await eventually(connected, 40)
    await fake.customer_says(device, CUSTOMER, "oi", name="Rita Lopes")
    await fake.customer_says(device, CUSTOMER, "1")  # the menu: Laboratório

    async def routed() -> str | None:
        items = (await t.supervisor.get("/api/v1/tickets")).json()["items"]
        lab = [i for i in items if i["department"] and i["department"]["id"] == str(t.lab_id)]
        return str(lab[0]["id"]) if lab else None

    ticket_id = await eventually(routed, 30)

    lab_agent = Stream(live.url, t.emails["agent"])
    sales_agent = Stream(live.url, t.emails["agent2"])  # Comercial: may not see the ticket
    tasks = [asyncio.create_task(s.run()) for s in (lab_agent, sales_agent)]
    try:
        await asyncio.wait_for(lab_agent.ready.wait(), 15)
        await asyncio.wait_for(sales_agent.ready.wait(), 15)
        assert await fake.customer_typing(device, CUSTOMER, "typing")
        (shown,) = await eventually(lambda: lab_agent.typing)
        assert shown == {
            "ticket_id": ticket_id,
            "name": "Rita Lopes",
            "typing": True,
            "customer": True,
        }
        await fake.customer_typing(device, CUSTOMER, "recording_audio")
        await eventually(lambda: len(lab_agent.typing) == 2)
        assert lab_agent.typing[1]["recording"] is True
        await fake.customer_typing(device, CUSTOMER, "available")
        await eventually(lambda: len(lab_agent.typing) == 3)
        assert lab_agent.typing[2]["typing"] is False
        await asyncio.sleep(0.3)
        assert sales_agent.typing == []
        assert live.daemon.customer_typing.shown == 3
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
