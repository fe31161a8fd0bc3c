"""The agent's day, driven through the real app against a real zapd with the sandbox.

Log in; a customer's message arrives in the queue; accept; reply; the ticks advance to
read; an internal note; a quick reply; transfer; close. Then zapd is stopped and started
again in the middle of a conversation: the events missed meanwhile are shown once, and
a reply typed while it was down is sent once when it is back.
"""

from __future__ import annotations

import uuid

from shared.enums import MessageStatus, TicketStatus
from tests.zaptui.conftest import PASSWORD, TuiZapd, wait_until
from zapd.connectors.sandbox import AckTiming
from zaptui.app import ZapApp, make_app
from zaptui.config import TuiSettings
from zaptui.screens.close import CloseScreen
from zaptui.screens.confirm import ConfirmScreen
from zaptui.screens.login import LoginScreen
from zaptui.screens.main import MainScreen
from zaptui.screens.quick_replies import QuickRepliesScreen
from zaptui.screens.transfer import TransferScreen
from zaptui.widgets.chat_log import ChatLog
from zaptui.widgets.composer import ComposerInput
from zaptui.widgets.ticket_list import TicketList

CUSTOMER = "+5511912345678"


def settings(z: TuiZapd, **kw: object) -> TuiSettings:
    return TuiSettings(server=z.url, bell=False, reconnect_initial=0.3, reconnect_max=1.0, **kw)


async def log_in(pilot: object, app: ZapApp, email: str) -> MainScreen:
    """Type the e-mail and password into the login screen and wait for the main screen."""
    await wait_until(lambda: isinstance(app.screen, LoginScreen))
    screen = app.screen
    screen.query_one("#login-email").value = email  # type: ignore[attr-defined]
    screen.query_one("#login-password").focus()
    await pilot.press(*PASSWORD, "enter")  # type: ignore[attr-defined]
    await wait_until(lambda: isinstance(app.screen, MainScreen))
    assert isinstance(app.screen, MainScreen)
    return app.screen


async def routed_ticket(z: TuiZapd, app: ZapApp, name: str = "Paula Dias") -> uuid.UUID:
    """A customer writes and picks the Laboratório (the agent's department)."""
    await z.say(CUSTOMER, "Olá, boa tarde", name=name)
    await z.say(CUSTOMER, "1")
    assert app.inbox is not None

    def queued() -> uuid.UUID | None:
        for row in app.inbox.rows.values():  # type: ignore[union-attr]
            dep = row.ticket.department
            if row.ticket.status == TicketStatus.PENDING and dep and dep.name == "Laboratório":
                return row.id
        return None

    return await wait_until(queued)


async def test_agent_day(tui_zapd: TuiZapd) -> None:
    z = tui_zapd
    assert z.live is not None
    z.live.daemon.sandbox.timing = AckTiming(sent=0.05, delivered=0.1, read=0.2, jitter=0.02)
    r = await z.t.admin.post(
        "/api/v1/quick-replies", json={"shortcut": "horario", "body": "Atendemos das 8h às 18h."}
    )
    assert r.status_code == 201, r.text
    app = make_app(settings(z))
    async with app.run_test(size=(120, 36)) as pilot:
        main = await log_in(pilot, app, z.agent_email)
        await wait_until(lambda: app.subscription is not None and app.subscription.connected)

        # A customer's message arrives in the queue.
        tid = await routed_ticket(z, app)
        tl = main.query_one(TicketList)
        await wait_until(lambda: any(r.id == tid for r in tl.rows))

        # Accept it (modal), the chat opens with the history.
        tl.focus()
        await wait_until(lambda: tl.select_id(tid))
        await pilot.press("a")
        await wait_until(lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_until(lambda: app.inbox.rows[tid].ticket.status == TicketStatus.OPEN)
        assert main.current == tid
        log = main.query_one(ChatLog)
        await wait_until(lambda: "Olá, boa tarde" in main.chat_texts())

        # Reply: Enter sends; the ticks advance to read.
        main.query_one(ComposerInput).focus()
        await pilot.press(*"Bom dia, Paula")
        await pilot.press("enter")

        def reply() -> object:
            # zapd prefixes what the customer reads with the agent and department.
            return next(
                (
                    i
                    for i in log.items
                    if (i.body or "").endswith("Bom dia, Paula") and not i.pending
                ),
                None,
            )

        await wait_until(reply)
        seen: list[MessageStatus] = []

        def read() -> bool:
            item = reply()
            st = item.status  # type: ignore[union-attr]
            if not seen or seen[-1] != st:
                seen.append(st)
            return st == MessageStatus.READ

        await wait_until(read, within=15, pause=0.01)
        assert seen[-1] == MessageStatus.READ
        assert seen == sorted(seen, key=lambda s: s.rank)  # only forward

        # An internal note: visible mode, stored as a note, never sent to the customer.
        main.query_one(ComposerInput).focus()
        await pilot.press("ctrl+t")
        await wait_until(lambda: main.query_one("#composer").has_class("-note"))
        await pilot.press(*"cliente VIP")
        await pilot.press("enter")
        await wait_until(
            lambda: any(i.is_note and i.body == "cliente VIP" and not i.pending for i in log.items)
        )
        await pilot.press("ctrl+t")

        # A quick reply: "/" opens the list, fuzzy search, Enter inserts, Enter sends.
        await pilot.press("slash")
        await wait_until(lambda: isinstance(app.screen, QuickRepliesScreen))
        await pilot.press(*"horar")
        await pilot.press("enter")
        await wait_until(lambda: isinstance(app.screen, MainScreen))
        assert main.query_one(ComposerInput).text == "Atendemos das 8h às 18h."
        await pilot.press("enter")
        await wait_until(
            lambda: any(
                (i.body or "").endswith("Atendemos das 8h às 18h.") and not i.pending
                for i in log.items
            )
        )

        async def phone() -> list[str]:
            r = await z.t.admin.get(
                f"/api/v1/sandbox/{z.session_id}/inbox", params={"phone": CUSTOMER}
            )
            return [m["body"] or "" for m in r.json()]

        async def delivered() -> bool:  # the outbox delivers after the answer
            return any("Atendemos das 8h às 18h." in b for b in await phone())

        await wait_until(delivered)
        assert not any("cliente VIP" in b for b in await phone())  # notes never leave

        # Transfer to Comercial (a modal returning a typed result).
        main.query_one(TicketList).focus()
        await pilot.press("t")
        await wait_until(lambda: isinstance(app.screen, TransferScreen))
        app.screen.query_one("#transfer-department").value = z.t.sales_id  # type: ignore[attr-defined]
        app.screen.query_one("#transfer-message").focus()
        await pilot.press("enter")
        await wait_until(lambda: isinstance(app.screen, MainScreen))

        def moved() -> bool:
            row = app.inbox.rows.get(tid)  # type: ignore[union-attr]
            return row is None or (
                row.ticket.department is not None and row.ticket.department.id == z.t.sales_id
            )

        await wait_until(moved)
        r = await z.t.supervisor.get(f"/api/v1/tickets/{tid}")
        assert r.json()["department"]["id"] == str(z.t.sales_id)


async def test_close_ticket(tui_zapd: TuiZapd) -> None:
    z = tui_zapd
    app = make_app(settings(z))
    async with app.run_test(size=(120, 36)) as pilot:
        main = await log_in(pilot, app, z.agent_email)
        tid = await routed_ticket(z, app, name="Rui")
        r = await z.t.agent.post(f"/api/v1/tickets/{tid}/accept")
        assert r.status_code == 200, r.text
        await wait_until(lambda: app.inbox.rows[tid].ticket.status == TicketStatus.OPEN)
        main.open_ticket(tid)
        main.query_one(TicketList).focus()
        await pilot.press("c")
        await wait_until(lambda: isinstance(app.screen, CloseScreen))
        app.screen.query_one("#close-farewell").value = False  # type: ignore[attr-defined]
        await pilot.click("#ok")
        await wait_until(lambda: app.inbox.rows[tid].ticket.status == TicketStatus.CLOSED)
        r = await z.t.agent.get(f"/api/v1/tickets/{tid}")
        assert r.json()["status"] == TicketStatus.CLOSED
        assert not main.query_one("#composer").display  # nothing to write on a closed ticket


async def test_zapd_restart_mid_conversation(tui_zapd: TuiZapd) -> None:
    z = tui_zapd
    app = make_app(settings(z))
    async with app.run_test(size=(120, 36)) as pilot:
        main = await log_in(pilot, app, z.agent_email)
        await wait_until(lambda: app.subscription is not None and app.subscription.connected)
        tid = await routed_ticket(z, app, name="Lia")
        r = await z.t.agent.post(f"/api/v1/tickets/{tid}/accept")
        assert r.status_code == 200, r.text
        main.open_ticket(tid)
        await wait_until(lambda: "Olá, boa tarde" in main.chat_texts())

        await z.stop()
        await wait_until(lambda: not app.online)
        assert main.query_one("#banner").display

        # Typed while zapd is down: shown pending, not lost.
        main.query_one(ComposerInput).focus()
        await pilot.press(*"Já volto")
        await pilot.press("enter")
        log = main.query_one(ChatLog)
        await wait_until(lambda: any(i.body == "Já volto" and i.pending for i in log.items))

        await z.start()
        # The customer writes before the app is back on the stream: a missed event.
        await z.say(CUSTOMER, "Alguém aí?")
        await wait_until(lambda: app.online, within=15)
        await wait_until(lambda: "Alguém aí?" in main.chat_texts(), within=15)
        await wait_until(
            lambda: any((i.body or "").endswith("Já volto") and not i.pending for i in log.items)
        )
        assert not main.query_one("#banner").display
        await pilot.pause(0.5)  # let any duplicate replay land
        assert main.chat_texts().count("Alguém aí?") == 1
        assert sum(1 for b in main.chat_texts() if b.endswith("Já volto")) == 1
        r = await z.t.agent.get(f"/api/v1/tickets/{tid}/messages")
        bodies = [m["body"] for m in r.json()["items"]]
        assert sum(1 for b in bodies if b.endswith("Já volto")) == 1  # once: idempotency key
        assert bodies.count("Alguém aí?") == 1
