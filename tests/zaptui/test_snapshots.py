"""SVG snapshots of the agent UI (pytest-textual-snapshot), on pinned data and clock.

Reviewed by eye before being accepted (rendered to PNG). Regenerate after a deliberate
change with `pytest tests/zaptui/test_snapshots.py --snapshot-update` and look again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from textual.pilot import Pilot

from shared.credentials import Stored
from shared.protocol.tickets import ServiceWindow
from tests.zaptui.sample import CHAT_TICKET, NOW, busy_inbox
from zaptui.app import ZapApp, make_app
from zaptui.config import TuiSettings
from zaptui.i18n import set_language
from zaptui.model import set_clock
from zaptui.widgets.chat_log import ChatLog
from zaptui.widgets.ticket_list import TicketList


class NoStore:
    """A token store that holds nothing (the app starts on the login screen)."""

    def load(self, server: str) -> Stored | None:
        return None

    def save(self, server: str, stored: Stored) -> str:
        return "memory"

    def forget(self, server: str) -> bool:
        return False


@pytest.fixture(autouse=True)
def pinned(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fixed clock, UTC, Portuguese: the same pixels on every machine."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    set_clock(lambda: NOW)
    set_language("pt_BR")
    yield
    set_clock(None)
    monkeypatch.delenv("TZ")
    time.tzset()


def no_blink(app: ZapApp) -> None:
    for widget in app.screen.query("Input, TextArea"):
        widget.cursor_blink = False  # type: ignore[attr-defined]


def settings(**kw: Any) -> TuiSettings:
    return TuiSettings(server="http://127.0.0.1:8765", bell=False, **kw)


def busy_app(**kw: Any) -> ZapApp:
    return make_app(settings(**kw), credentials=NoStore(), inbox=busy_inbox())


async def open_chat(pilot: Pilot[None]) -> None:
    app = pilot.app
    assert isinstance(app, ZapApp) and app.main is not None
    await pilot.pause()
    app.main.query_one(TicketList).select_id(CHAT_TICKET)
    app.main.open_ticket(CHAT_TICKET)
    no_blink(app)
    await pilot.pause()


def test_login(snap_compare: Any) -> None:
    app = make_app(settings(email="ana@demo.zap.br"), credentials=NoStore())

    async def ready(pilot: Pilot[None]) -> None:
        await pilot.pause()
        no_blink(pilot.app)  # type: ignore[arg-type]

    assert snap_compare(app, terminal_size=(80, 24), run_before=ready)


def test_busy_main_screen(snap_compare: Any) -> None:
    assert snap_compare(busy_app(), terminal_size=(120, 36), run_before=open_chat)


def test_busy_main_screen_80x24(snap_compare: Any) -> None:
    assert snap_compare(busy_app(), terminal_size=(80, 24), run_before=open_chat)


def test_chat_every_kind_and_tick(snap_compare: Any) -> None:
    """Inbound text and media, the bot menu, system lines, a note, every tick, a failure
    with its reason (selected), and a message pending while offline."""

    async def select_failed(pilot: Pilot[None]) -> None:
        await open_chat(pilot)
        app = pilot.app
        assert isinstance(app, ZapApp) and app.main is not None
        log = app.main.query_one(ChatLog)
        log.focus()
        await pilot.press("up", "up", "up")  # pending, queued, failed
        await pilot.pause()

    assert snap_compare(busy_app(theme="light"), terminal_size=(140, 44), run_before=select_failed)


def test_chat_top_menu_and_system_lines(snap_compare: Any) -> None:
    """The top of the same chat: the bot menu and the system lines inline."""

    async def top(pilot: Pilot[None]) -> None:
        await open_chat(pilot)
        app = pilot.app
        assert isinstance(app, ZapApp) and app.main is not None
        app.main.query_one(ChatLog).focus()
        await pilot.press("home")
        await pilot.pause()

    assert snap_compare(busy_app(), terminal_size=(140, 44), run_before=top)


def test_cloud_chat_with_the_window_closed(snap_compare: Any) -> None:
    """A Cloud API ticket whose customer wrote 25 h ago: the header says the window is
    closed, the composer says free text is refused and what still goes out."""
    last = NOW - timedelta(hours=25)

    async def closed(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, ZapApp) and app.inbox is not None
        app.inbox.rows[CHAT_TICKET].window = ServiceWindow(
            open=False, last_inbound_at=last, expires_at=last + timedelta(hours=24)
        )
        await open_chat(pilot)

    assert snap_compare(busy_app(), terminal_size=(120, 36), run_before=closed)
