"""The app around the journey: stored logins, expiry, logout, bad passwords, roles, history.

Every test drives the real app against a real zapd on loopback (SQLite, sandbox).
"""

from __future__ import annotations

import uuid

from shared import credentials
from shared.enums import TicketStatus
from shared.protocol.events import MESSAGE_NEW, EventEnvelope
from tests.zapd.api import seed
from tests.zaptui.conftest import PASSWORD, TuiZapd, wait_until
from tests.zaptui.test_journey import log_in, routed_ticket, settings
from zaptui.app import make_app
from zaptui.i18n import t
from zaptui.screens.login import LoginScreen
from zaptui.screens.main import MainScreen
from zaptui.widgets.chat_log import ChatLog


def login_error(app: object) -> str:
    screen = app.screen  # type: ignore[attr-defined]
    if not isinstance(screen, LoginScreen):
        return ""
    found = screen.query("#login-error")
    return str(found.first().render()) if found else ""


async def test_login_keeps_tokens_and_the_next_start_skips_the_form(tui_zapd: TuiZapd) -> None:
    z = tui_zapd
    app = make_app(settings(z))
    async with app.run_test(size=(100, 30)) as pilot:
        await log_in(pilot, app, z.agent_email)
    stored = credentials.load(z.url)  # the store zapctl uses too
    assert stored is not None and stored.email == z.agent_email and stored.refresh_token

    again = make_app(settings(z))
    async with again.run_test(size=(100, 30)):
        await wait_until(lambda: isinstance(again.screen, MainScreen))
        assert again.inbox is not None and again.inbox.me.email == z.agent_email


async def test_expired_login_returns_to_the_form_with_the_reason(tui_zapd: TuiZapd) -> None:
    z = tui_zapd
    credentials.save(z.url, credentials.Stored("not-a-token", "not-a-refresh", z.agent_email))
    app = make_app(settings(z))
    async with app.run_test(size=(100, 30)):
        await wait_until(lambda: isinstance(app.screen, LoginScreen))
        await wait_until(lambda: "expirou" in login_error(app))
        assert app.screen.query_one("#login-email").value == z.agent_email  # type: ignore[attr-defined]
    assert credentials.load(z.url) is None  # the dead login is forgotten


async def test_logout_and_wrong_password(tui_zapd: TuiZapd) -> None:
    z = tui_zapd
    app = make_app(settings(z))
    async with app.run_test(size=(100, 30)) as pilot:
        await log_in(pilot, app, z.agent_email)
        await pilot.press("ctrl+l")
        await wait_until(lambda: isinstance(app.screen, LoginScreen))
        assert login_error(app) == t("login.logged_out")
        assert credentials.load(z.url) is None
        # A wrong password: one line under the form, nothing else changes.
        screen = app.screen
        screen.query_one("#login-password").focus()
        await pilot.press(*"wrong-pass", "enter")
        await wait_until(lambda: login_error(app) == t("login.bad_credentials"))
        assert isinstance(app.screen, LoginScreen)
        screen.query_one("#login-password").value = ""  # type: ignore[attr-defined]
        await pilot.press(*PASSWORD, "enter")
        await wait_until(lambda: isinstance(app.screen, MainScreen))


async def test_unreachable_server_is_said_on_the_form(tui_zapd: TuiZapd) -> None:
    z = tui_zapd
    app = make_app(settings(z))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(lambda: isinstance(app.screen, LoginScreen))
        screen = app.screen
        screen.query_one("#login-server").value = "http://127.0.0.1:9"  # type: ignore[attr-defined]
        screen.query_one("#login-email").value = z.agent_email  # type: ignore[attr-defined]
        screen.query_one("#login-password").focus()
        await pilot.press(*PASSWORD, "enter")
        await wait_until(lambda: "127.0.0.1:9" in login_error(app))


async def test_admin_screens_only_for_supervisors(tui_zapd: TuiZapd) -> None:
    z = tui_zapd
    agent = make_app(settings(z))
    async with agent.run_test(size=(100, 30)) as pilot:
        await log_in(pilot, agent, z.agent_email)
        assert not agent.check_action("metrics", ())
        await pilot.press("f6")
        await pilot.pause(0.2)
        assert isinstance(agent.screen, MainScreen)
    credentials.forget(z.url)
    boss = make_app(settings(z))
    async with boss.run_test(size=(120, 36)) as pilot:
        main = await log_in(pilot, boss, z.t.emails["supervisor"])
        assert boss.check_action("metrics", ())
        # A supervisor sees every department in the sidebar.
        assert boss.inbox is not None
        inbox = boss.inbox
        await wait_until(
            lambda: {d.name for d in inbox.my_departments()} >= {"Laboratório", "Comercial"}
        )
        await pilot.press("f6")
        await wait_until(lambda: type(boss.screen).__name__ == "MetricsScreen")
        await pilot.press("escape")
        await wait_until(lambda: boss.screen is main)


async def test_history_pages_load_as_the_agent_scrolls_up(tui_zapd: TuiZapd) -> None:
    z = tui_zapd
    app = make_app(settings(z, page_size=50))
    async with app.run_test(size=(100, 30)) as pilot:
        main = await log_in(pilot, app, z.agent_email)
        tid = await routed_ticket(z, app, name="Hist")
        assert z.live is not None
        await seed.messages(z.live, tid, 180)
        main.open_ticket(tid)
        log = main.query_one(ChatLog)
        await wait_until(lambda: len(log.items) == 50)  # the newest page first
        await pilot.pause(0.2)
        assert len(log.items) == 50  # only: drawn at the top before settling asks for none
        assert log.items[-1].body == "mensagem 179"
        assert not log.complete
        log.focus()
        for _ in range(20):  # scroll to the top until everything is there
            await pilot.press("home")
            await pilot.pause(0.1)
            if log.complete:
                break
        await wait_until(lambda: log.complete)
        bodies = [i.body for i in log.items]
        assert len(bodies) == len(set(i.key for i in log.items))  # each message once
        seeded = [b for b in bodies if (b or "").startswith("mensagem ")]
        assert seeded == [f"mensagem {i}" for i in range(180)]  # in order, none missing


async def test_an_event_during_teardown_is_ignored_not_raised(tui_zapd: TuiZapd) -> None:
    """The stream can hand over an event while the screen's widgets are being removed
    (quit, logout): applying it must not fail the stream worker (that took the app down)."""
    z = tui_zapd
    app = make_app(settings(z))
    async with app.run_test(size=(100, 30)) as pilot:
        main = await log_in(pilot, app, z.agent_email)
        tid = await routed_ticket(z, app, name="Fim")
        main.open_ticket(tid)
        log = main.query_one(ChatLog)
        await wait_until(lambda: log.items)
        await log.remove()  # as the screen's teardown does, while the stream still runs
        late = EventEnvelope(
            seq=10_000,
            type=MESSAGE_NEW,
            company_id=uuid.uuid4(),
            data={
                "id": str(uuid.uuid4()),
                "ticket_id": str(tid),
                "direction": 0,
                "type": 0,
                "status": 6,
                "body": "ainda aí?",
                "is_note": False,
            },
        )
        change = app.apply_event(late)  # raised NoMatches before
        assert tid in change.chats
        await pilot.pause()
        assert not main.query(ChatLog)


async def test_new_ticket_rings_and_toasts(tui_zapd: TuiZapd) -> None:
    z = tui_zapd
    app = make_app(settings(z))
    rings: list[int] = []
    app.bell = lambda: rings.append(1)  # type: ignore[method-assign]
    app.settings.bell = True
    async with app.run_test(size=(100, 30)) as pilot:
        await log_in(pilot, app, z.agent_email)
        await wait_until(lambda: app.subscription is not None and app.subscription.connected)
        tid = await routed_ticket(z, app, name="Sino")
        await wait_until(lambda: rings)
        texts = [str(n.message) for n in app._notifications]
        number = app.inbox.rows[tid].ticket.number  # type: ignore[union-attr]
        assert any(str(number) in x for x in texts), texts
        assert app.inbox.rows[tid].ticket.status == TicketStatus.PENDING  # type: ignore[union-attr]
        assert isinstance(tid, uuid.UUID)
