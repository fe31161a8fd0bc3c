"""The Cloud API's 24-hour window in the agent UI, against a real zapd and the fake Graph API.

The customer wrote 25 h ago: the chat header says the window is closed and the composer
says free text is refused; a reply is refused by zapd (409 ERR_WINDOW_CLOSED) and the
app shows zapd's own text (since when, which templates) instead of a generic failure.
The customer writes again (a message stamped 23 h 30 min ago): closing soon with the
time left; and now: open, the warning gone, and a reply goes out through the Graph API.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.fakes.graph_api import FakeGraph, contact, inbound
from tests.zapd.api.test_cloud import cloud_session, hook_url
from tests.zaptui.conftest import TuiZapd, wait_until
from tests.zaptui.test_journey import log_in, settings
from zaptui.app import make_app
from zaptui.widgets.chat_log import ChatLog
from zaptui.widgets.composer import Composer, ComposerInput

PHONE = "5511955550001"


@pytest.fixture
async def fake() -> AsyncIterator[FakeGraph]:
    graph = await FakeGraph().start()
    try:
        yield graph
    finally:
        await graph.stop()


async def customer(z: TuiZapd, fake: FakeGraph, sid: str, msg: dict[str, Any]) -> None:
    doc = fake.webhook(messages=[msg], contacts=[contact(PHONE, "Célia Ramos")])
    r = await fake.deliver(hook_url(z.live, sid), doc)  # type: ignore[arg-type]
    assert r.status_code == 200, r.text


def header(app: Any) -> str:
    return str(app.main.query_one("#chat-header").render())


async def test_window_closed_closing_and_open_in_header_and_composer(
    tui_zapd: TuiZapd, fake: FakeGraph
) -> None:
    z = tui_zapd
    assert z.live is not None
    sid = await cloud_session(z.live, z.t, fake)
    then = int(time.time()) - 25 * 3600
    await customer(z, fake, sid, inbound("text", {"body": "Oi"}, sender=PHONE, ts=then))
    pick = {"type": "list_reply", "list_reply": {"id": "1", "title": "Laboratório"}}
    await customer(z, fake, sid, inbound("interactive", pick, sender=PHONE, ts=then + 5))

    app = make_app(settings(z))
    toasts: list[str] = []
    notify = app.notify

    def record(message: str, **kw: Any) -> None:
        toasts.append(message)
        notify(message, **kw)

    app.notify = record  # type: ignore[method-assign]
    async with app.run_test(size=(120, 36)) as pilot:
        main = await log_in(pilot, app, z.agent_email)

        def queued() -> uuid.UUID | None:
            for row in app.inbox.rows.values():  # type: ignore[union-attr]
                if row.ticket.client.phone == f"+{PHONE}" and row.ticket.department:
                    return row.id
            return None

        tid = await wait_until(queued)
        r = await z.t.agent.post(f"/api/v1/tickets/{tid}/accept")
        assert r.status_code == 200, r.text
        main.open_ticket(tid)
        await wait_until(lambda: "janela 24 h FECHADA" in header(app))
        composer = main.query_one(Composer)
        warning = composer.query_one("#composer-window")
        assert composer.window_closed and warning.display
        assert "recusa texto livre" in str(warning.render())

        main.query_one(ComposerInput).focus()
        await pilot.press(*"Oi, Célia!", "enter")
        log = main.query_one(ChatLog)
        failed = await wait_until(lambda: [i for i in log.items if i.error])
        assert "24-hour service window is closed" in (failed[0].error or "")
        assert "boas_vindas" in (failed[0].error or "")  # zapd names the templates
        shown = [m for m in toasts if m.startswith("Não enviada: a janela de 24 h")]
        assert shown and "boas_vindas" in shown[0]
        assert not [s for s in fake.sent if "Oi, Célia!" in s.get("text", {}).get("body", "")]

        await pilot.press("ctrl+t")  # note mode: notes never reach WhatsApp
        assert not warning.display
        await pilot.press("ctrl+t")
        assert warning.display

        soon = int(time.time()) - (23 * 3600 + 30 * 60)
        await customer(z, fake, sid, inbound("text", {"body": "Ainda aí?"}, sender=PHONE, ts=soon))
        await wait_until(lambda: "janela 24 h fecha em" in header(app))
        assert "29 min" in header(app) or "30 min" in header(app)
        assert not composer.window_closed and not warning.display

        await customer(z, fake, sid, inbound("text", {"body": "Voltei"}, sender=PHONE))
        await wait_until(lambda: "janela 24 h aberta" in header(app))
        assert "23 h 59 min" in header(app) or "24 h 00 min" in header(app)
        main.query_one(ComposerInput).focus()
        await pilot.press(*"Oi de novo", "enter")

        async def sent() -> bool:
            texts = [s.get("text", {}).get("body", "") for s in fake.sent]
            return any(body.endswith("\nOi de novo") for body in texts)  # after the signature

        await wait_until(sent)
