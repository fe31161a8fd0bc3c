"""The sessions screen against a real zapd: live status, start/stop, linking by QR.

Every status change on screen comes from the daemon's event stream: the tests act
through the API (or the screen's keys) and wait for the table to say so.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from textual.app import App
from textual.screen import Screen
from textual.widgets import DataTable

from shared.client import ZapClient
from shared.enums import Engine, SessionStatus
from shared.protocol.sessions import SessionCreate
from tests.zaptui.conftest import TuiZapd, wait_until
from tests.zaptui.widgets.test_qr import read_qr
from zaptui.screens.qr import QRScreen
from zaptui.screens.sessions import ConfirmLogout, SessionsScreen
from zaptui.widgets.qr import QRCode


def token_of(z: TuiZapd, who: str) -> str:
    """The access token the seeded tenant's `who` logged in with."""
    return z.t.clients[who].headers["Authorization"].removeprefix("Bearer ")


@pytest.fixture
async def admin(tui_zapd: TuiZapd) -> AsyncIterator[ZapClient]:
    async with ZapClient(tui_zapd.url, token=token_of(tui_zapd, "admin")) as client:
        yield client


class Host(App[None]):
    """A bare app showing one screen (the real app wires the same screens)."""

    def __init__(self, screen: Screen[Any]) -> None:
        super().__init__()
        self.first = screen

    def on_mount(self) -> None:
        self.push_screen(self.first)


async def new_session(client: ZapClient, name: str) -> uuid.UUID:
    """Create a sandbox session that is not started (DISCONNECTED)."""
    made = await client.create_session(SessionCreate(name=name, engine=Engine.SANDBOX))
    return made.id


def cell(screen: SessionsScreen, sid: uuid.UUID, column: str) -> str:
    return str(screen.query_one(DataTable).get_cell(str(sid), column))


def move_to(screen: SessionsScreen, sid: uuid.UUID) -> None:
    table = screen.query_one(DataTable)
    table.move_cursor(row=table.get_row_index(str(sid)))


async def test_live_status_start_link_by_qr_and_stop(tui_zapd: TuiZapd, admin: ZapClient) -> None:
    linked = uuid.UUID(tui_zapd.session_id)
    loja = await new_session(admin, "Loja")
    screen = SessionsScreen(admin)
    app = Host(screen)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(lambda: screen.live)
        assert "Conectada" in cell(screen, linked, "status")
        assert "Desconectada" in cell(screen, loja, "status")
        assert cell(screen, loja, "engine") == "Sandbox"

        # A session created meanwhile appears by itself.
        extra = await new_session(admin, "Filial")
        await wait_until(lambda: extra in screen.sessions)
        assert "Desconectada" in cell(screen, extra, "status")

        # Start "Loja" from the screen: it waits for a QR, and the QR screen opens.
        move_to(screen, loja)
        await pilot.press("s")
        await wait_until(lambda: isinstance(app.screen, QRScreen))
        qr_screen = app.screen
        assert isinstance(qr_screen, QRScreen)
        await wait_until(lambda: qr_screen.qr is not None)
        await pilot.pause()
        api_qr = (await admin.session_qr(loja)).qr
        assert read_qr(app, qr_screen.query_one(QRCode)) == [api_qr]
        assert screen.status_of(loja) == SessionStatus.WAITING_QR

        # Back to the list, and Enter on the waiting session opens its QR again.
        await pilot.press("escape")
        await wait_until(lambda: app.screen is screen)
        move_to(screen, loja)
        screen.query_one(DataTable).focus()
        await pilot.press("enter")
        await wait_until(lambda: isinstance(app.screen, QRScreen) and app.screen is not qr_screen)
        qr_screen = app.screen
        assert isinstance(qr_screen, QRScreen)
        await wait_until(lambda: qr_screen.qr == api_qr)

        # The phone scans it: the QR screen says so, then the table.
        await admin.sandbox_scan(loja, "+55 11 3000-2000")
        await wait_until(lambda: qr_screen.status == SessionStatus.CONNECTED)
        await pilot.pause()
        assert "+5511" in str(qr_screen.query_one("#qr-linked").render())
        await pilot.press("escape")
        await wait_until(lambda: app.screen is screen)
        await wait_until(lambda: "Conectada" in cell(screen, loja, "status"))
        assert cell(screen, loja, "phone") == "+551130002000"

        # Stop it from the screen: disconnected, live.
        move_to(screen, loja)
        await pilot.press("x")
        await wait_until(lambda: "Desconectada" in cell(screen, loja, "status"))

        # Logout asks first; "no" changes nothing.
        move_to(screen, linked)
        await pilot.press("l")
        await wait_until(lambda: isinstance(app.screen, ConfirmLogout))
        await pilot.press("escape")
        await wait_until(lambda: app.screen is screen)
        assert (await admin.get_session(linked)).status == SessionStatus.CONNECTED
        # "Yes" unlinks it: the table follows the daemon.
        await pilot.press("l")
        await wait_until(lambda: isinstance(app.screen, ConfirmLogout))
        await pilot.press("tab", "enter")
        await wait_until(lambda: app.screen is screen)
        await wait_until(lambda: "Desconectada" in cell(screen, linked, "status"))
        assert (await admin.get_session(linked)).status == SessionStatus.DISCONNECTED


async def test_a_supervisor_is_refused_and_nothing_changes(tui_zapd: TuiZapd) -> None:
    linked = uuid.UUID(tui_zapd.session_id)
    async with ZapClient(tui_zapd.url, token=token_of(tui_zapd, "supervisor")) as sup:
        screen = SessionsScreen(sup)
        app = Host(screen)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_until(lambda: screen.live)
            move_to(screen, linked)
            await pilot.press("x")
            await wait_until(
                lambda: any("Atendimento" in str(n.message) for n in app._notifications)
            )
            note = next(iter(app._notifications))
            assert note.severity == "error"
            await pilot.pause(0.3)
            assert "Conectada" in cell(screen, linked, "status")
