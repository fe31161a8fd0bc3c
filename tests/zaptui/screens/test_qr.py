"""The QR screen against a real zapd: the code on screen decodes to the session's QR,
is redrawn when it changes, gives way to a clear message when the terminal is too
small, and a pairing code links the session too.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from pytest_textual_snapshot import SVGImageExtension
from syrupy.assertion import SnapshotAssertion
from textual.widgets import Input, Static

from shared.client import ZapClient
from shared.enums import SessionStatus
from tests.zaptui.conftest import TuiZapd, wait_until
from tests.zaptui.screens.test_sessions import Host, new_session, token_of
from tests.zaptui.widgets.test_qr import read_qr, screen_cells
from zaptui.screens.qr import QRScreen
from zaptui.widgets.qr import QRCode


@pytest.fixture
async def admin(tui_zapd: TuiZapd) -> AsyncIterator[ZapClient]:
    async with ZapClient(tui_zapd.url, token=token_of(tui_zapd, "admin")) as client:
        yield client


async def waiting_session(admin: ZapClient, name: str = "Loja") -> uuid.UUID:
    """A sandbox session started and showing a QR."""
    sid = await new_session(admin, name)
    await admin.start_session(sid)
    await wait_until(lambda: _has_qr(admin, sid))
    return sid


async def _has_qr(admin: ZapClient, sid: uuid.UUID) -> bool:
    return (await admin.session_qr(sid)).qr is not None


def text_of(screen: QRScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def test_the_code_decodes_is_redrawn_and_scanning_links(admin: ZapClient) -> None:
    sid = await waiting_session(admin)
    screen = QRScreen(admin, sid)
    app = Host(screen)
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_until(lambda: screen.live and screen.qr is not None)
        await pilot.pause()
        first = (await admin.session_qr(sid)).qr
        assert screen.qr == first
        assert read_qr(app, screen.query_one(QRCode)) == [first]
        assert "Loja" in text_of(screen, "#qr-title")  # the name, fetched
        assert "zapctl sandbox scan Loja" in text_of(screen, "#qr-sandbox")
        assert "s" in text_of(screen, "#qr-expiry")

        # A new code (the engine restarted; the same `session.qr` event as a rotation,
        # without waiting the sandbox's 20 s): the new one replaces the old one.
        drawn = screen.qr_changes
        await admin.stop_session(sid)
        await admin.start_session(sid)
        await wait_until(lambda: screen.qr is not None and screen.qr != first)
        await pilot.pause()
        second = (await admin.session_qr(sid)).qr
        assert screen.qr_changes == drawn + 1
        assert read_qr(app, screen.query_one(QRCode)) == [second] != [first]

        # The phone scans it: linked, the code disappears.
        await admin.sandbox_scan(sid, "+55 11 3000-3000")
        await wait_until(lambda: screen.status == SessionStatus.CONNECTED)
        await pilot.pause()
        assert read_qr(app, screen.query_one(QRCode)) == []
        assert "Conectada como +551130003000" in text_of(screen, "#qr-status")
        await pilot.press("escape")
        await wait_until(lambda: app.screen is not screen)


async def test_a_small_terminal_gets_a_message_then_the_code(admin: ZapClient) -> None:
    sid = await waiting_session(admin)
    screen = QRScreen(admin, sid)
    app = Host(screen)
    async with app.run_test(size=(60, 16)) as pilot:
        await wait_until(lambda: screen.live and screen.qr is not None)
        await pilot.pause()
        widget = screen.query_one(QRCode)
        shown = "\n".join("".join(c for c, _, _ in row) for row in screen_cells(app, widget.region))
        flat = " ".join(shown.split())
        assert "Terminal pequeno demais para o QR code" in flat
        need = widget.needed
        assert f"{need.width}×{need.height}" in flat
        assert read_qr(app, widget) == []
        await pilot.resize_terminal(100, 40)
        await pilot.pause()
        assert read_qr(app, widget) == [screen.qr]


async def test_a_pairing_code_links_the_session(admin: ZapClient) -> None:
    sid = await waiting_session(admin)
    screen = QRScreen(admin, sid)
    app = Host(screen)
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_until(lambda: screen.live and screen.qr is not None)
        phone = screen.query_one("#pair-phone", Input)
        await pilot.press("p")
        assert phone.has_focus
        # A number the API refuses: its message, inline; nothing else changes.
        await pilot.press(*"12", "enter")
        await wait_until(lambda: text_of(screen, "#pair-error") != "")
        assert screen.pairing_code is None
        phone.value = ""
        await pilot.press(*"+5511987654321", "enter")
        await wait_until(lambda: screen.pairing_code is not None)
        code = screen.pairing_code
        assert code is not None
        assert f"{code[:4]}-{code[4:]}" in text_of(screen, "#pair-code")
        assert text_of(screen, "#pair-error") == ""
        # The phone's owner types it: the session links.
        await admin.sandbox_enter_code(sid, code)
        await wait_until(lambda: screen.status == SessionStatus.CONNECTED)
        assert "+5511987654321" in text_of(screen, "#qr-status")


FIXED_NOW = datetime(2026, 12, 4, 15, 30, tzinfo=UTC)
FIXED_QR = "zap-sandbox:01a202b1-e109-74b0-bfcd-e9d005546d66:BkA_2b1Riq_B7HdqtngpzQ"


@pytest.mark.parametrize("theme", ["textual-dark", "textual-light"])
async def test_snapshot_of_the_qr_screen_at_80x24(
    admin: ZapClient, snapshot: SnapshotAssertion, theme: str
) -> None:
    """80×24 on a dark and a light theme: the code is black on white on both. The
    daemon's QR and clock change every run: once the screen is live, the event stream is
    stopped and a fixed code and clock are shown."""
    sid = await waiting_session(admin, "Atendimento Loja")
    screen = QRScreen(admin, sid, clock=lambda: FIXED_NOW)
    app = Host(screen)
    app.theme = theme
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(lambda: screen.live and screen.qr is not None)
        screen.workers.cancel_group(screen, "qr-events")
        screen.show_qr(FIXED_QR, FIXED_NOW + timedelta(seconds=17), status=SessionStatus.WAITING_QR)
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()
        assert read_qr(app, screen.query_one(QRCode)) == [FIXED_QR]  # fits 80×24
        assert snapshot.use_extension(SVGImageExtension) == app.export_screenshot()
