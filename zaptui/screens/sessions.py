"""The company's WhatsApp sessions with their live status, and their engine controls.

Invariants:
- The table is loaded from `GET /sessions` once the event stream is open, then kept
  current by `session.status` / `session.qr` events alone (created and deleted sessions
  included), so what it shows is never older than the last event received.
- Start, stop and logout go to the API in workers; a refusal (403 for supervisors, 409...)
  is a toast with the daemon's message and changes nothing on screen: the status column
  changes only when the daemon says the status changed.
- Logout (which unlinks the number) asks for confirmation first.
- A session waiting to be linked opens the QR screen (Enter); a session started from
  here opens it by itself as soon as it waits for a QR.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Footer, Label, Static

from shared.client import ZapClient, ZapError
from shared.enums import Engine, SessionStatus
from shared.protocol.events import SESSION_QR, SESSION_STATUS, EventEnvelope
from shared.protocol.sessions import SessionOut
from zaptui.i18n import t
from zaptui.screens.qr import (
    QRScreen,
    event_session_id,
    follow_events,
    localize_bindings,
    status_text,
)

STATUS_STYLE: dict[SessionStatus, str] = {
    SessionStatus.CONNECTED: "bold green",
    SessionStatus.DISCONNECTED: "dim",
    SessionStatus.WAITING_QR: "bold yellow",
    SessionStatus.AUTHENTICATING: "cyan",
    SessionStatus.SYNCING: "cyan",
    SessionStatus.ERROR: "bold red",
}
STATUS_ICON: dict[SessionStatus, str] = {
    SessionStatus.CONNECTED: "●",
    SessionStatus.DISCONNECTED: "○",
    SessionStatus.WAITING_QR: "▣",
    SessionStatus.AUTHENTICATING: "◐",
    SessionStatus.SYNCING: "◐",
    SessionStatus.ERROR: "✗",
}
COLUMNS = ("name", "phone", "engine", "status", "reason", "heartbeat")


def engine_text(engine: Engine) -> str:
    """The engine of a session in words."""
    return t(f"sessions.engine.{engine.name}")


def status_cell(status: SessionStatus) -> Text:
    """The status column: an icon and the status in words, coloured."""
    return Text(f"{STATUS_ICON[status]} {status_text(status)}", style=STATUS_STYLE[status])


def _when(value: datetime | None) -> str:
    return value.astimezone().strftime("%d/%m %H:%M:%S") if value else "—"


class ConfirmLogout(ModalScreen[bool]):
    """Asks a yes/no question; dismissed with True only on an explicit yes."""

    DEFAULT_CSS = """
    ConfirmLogout {
        align: center middle;
    }
    ConfirmLogout > Grid {
        grid-size: 2;
        grid-gutter: 1 2;
        grid-rows: auto 3;
        width: 60;
        max-width: 90%;
        height: auto;
        padding: 1 2;
        border: thick $warning 70%;
        background: $surface;
    }
    ConfirmLogout #confirm-question {
        column-span: 2;
        width: 1fr;
    }
    ConfirmLogout Button {
        width: 1fr;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "no", "sessions.key_cancel")]

    def __init__(self, question: str) -> None:
        super().__init__()
        localize_bindings(self)
        self.question = question

    def compose(self) -> ComposeResult:
        with Grid():
            yield Label(self.question, id="confirm-question")
            yield Button(t("sessions.confirm_yes"), variant="error", id="confirm-yes")
            yield Button(t("sessions.confirm_no"), variant="primary", id="confirm-no")

    def on_mount(self) -> None:
        self.query_one("#confirm-no", Button).focus()

    @on(Button.Pressed)
    def _answer(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm-yes")

    def action_no(self) -> None:
        self.dismiss(False)


class SessionsScreen(Screen[None]):
    """Every session the user may see, live; start, stop, logout, and link by QR."""

    DEFAULT_CSS = """
    SessionsScreen #sessions-title {
        height: 1;
        padding: 0 1;
        text-style: bold;
        background: $panel;
    }
    SessionsScreen #sessions-table {
        height: 1fr;
    }
    SessionsScreen #sessions-hint {
        height: auto;
        padding: 0 1;
        color: $text-muted;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "sessions.key_back"),
        Binding("enter", "link", "sessions.key_link", show=True, priority=False),
        Binding("s", "start", "sessions.key_start"),
        Binding("x", "stop", "sessions.key_stop"),
        Binding("l", "logout", "sessions.key_logout"),
        Binding("r", "reload", "sessions.key_reload"),
    ]

    def __init__(self, client: ZapClient) -> None:
        super().__init__()
        localize_bindings(self)
        self.client = client
        self.sessions: dict[uuid.UUID, SessionOut] = {}
        self.live = False  # the event stream is open and the table loaded (tests wait)
        self._link_after_start: set[uuid.UUID] = set()

    def compose(self) -> ComposeResult:
        yield Static(t("sessions.title"), id="sessions-title")
        table: DataTable[str | Text] = DataTable(
            id="sessions-table", cursor_type="row", zebra_stripes=True
        )
        yield table
        yield Static(t("sessions.hint"), id="sessions-hint")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for col in COLUMNS:
            table.add_column(t(f"sessions.col.{col}"), key=col)
        table.loading = True
        self._follow()

    # ----------------------------------------------------------------- data

    @work(exclusive=True, group="sessions-events")
    async def _follow(self) -> None:
        await follow_events(
            self.client, self.apply_event, on_open=self._opened, on_error=self._stream_error
        )

    async def _opened(self) -> None:
        await self._load()
        self.live = True

    def _stream_error(self, exc: ZapError) -> None:
        self.live = False
        self.notify(t("live.unavailable", reason=exc.message), severity="warning")

    async def _load(self) -> None:
        table = self.query_one(DataTable)
        try:
            rows = await self.client.list_sessions()
        except ZapError as exc:
            table.loading = False
            self.notify(t("sessions.load_failed", reason=exc.message), severity="error")
            return
        self.sessions = {s.id: s for s in rows}
        table.clear()
        for s in sorted(rows, key=lambda s: s.name.casefold()):
            table.add_row(*self._cells(s), key=str(s.id))
        table.loading = False

    def _cells(self, s: SessionOut) -> list[str | Text]:
        return [
            s.name,
            s.phone or "—",
            engine_text(s.engine),
            status_cell(s.status),
            s.status_reason or "",
            _when(s.last_heartbeat_at),
        ]

    async def apply_event(self, event: EventEnvelope) -> None:
        """Keep the table current from `session.status` and `session.qr` events."""
        if event.type not in (SESSION_STATUS, SESSION_QR):
            return
        sid = event_session_id(event)
        if sid is None:
            return
        action = event.data.get("action")
        if action == "delete":
            self._remove(sid)
            return
        known = self.sessions.get(sid)
        if known is None or action == "create":
            await self._fetch(sid)
            return
        if event.type == SESSION_QR:
            status = SessionStatus.WAITING_QR
            changes: dict[str, object] = {"status": status}
        else:
            try:
                status = SessionStatus(int(event.data["status"]))
            except (KeyError, TypeError, ValueError):
                return
            changes = {"status": status, "status_reason": event.data.get("reason")}
            if isinstance(event.data.get("phone"), str):
                changes["phone"] = event.data["phone"]
        self._put(known.model_copy(update=changes))
        if status in (SessionStatus.CONNECTED, SessionStatus.ERROR):
            self._link_after_start.discard(sid)  # linked already, or failed: no QR coming
        if status == SessionStatus.WAITING_QR and sid in self._link_after_start:
            self._link_after_start.discard(sid)
            if self.app.screen is self:
                self._open_qr(sid)

    async def _fetch(self, sid: uuid.UUID) -> None:
        try:
            s = await self.client.get_session(sid)
        except ZapError:
            return  # gone meanwhile, or not visible to this user
        self._put(s)

    def _put(self, s: SessionOut) -> None:
        table = self.query_one(DataTable)
        key = str(s.id)
        if s.id in self.sessions and key in table.rows:
            for col, value in zip(COLUMNS, self._cells(s), strict=True):
                table.update_cell(key, col, value)
        else:
            table.add_row(*self._cells(s), key=key)
        self.sessions[s.id] = s

    def _remove(self, sid: uuid.UUID) -> None:
        table = self.query_one(DataTable)
        if str(sid) in table.rows:
            table.remove_row(str(sid))
        self.sessions.pop(sid, None)

    # ----------------------------------------------------------------- actions

    def selected(self) -> SessionOut | None:
        """The session under the cursor (None when the table is empty)."""
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.sessions.get(uuid.UUID(key)) if key else None

    def status_of(self, sid: uuid.UUID) -> SessionStatus | None:
        """The status the table shows for a session."""
        s = self.sessions.get(sid)
        return s.status if s else None

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def action_reload(self) -> None:
        self._reload()

    @work(exclusive=True, group="sessions-reload")
    async def _reload(self) -> None:
        await self._load()

    @on(DataTable.RowSelected)
    def _row_chosen(self) -> None:
        self.action_link()

    def action_link(self) -> None:
        s = self.selected()
        if s is None:
            return
        if s.status == SessionStatus.WAITING_QR:
            self._open_qr(s.id)
        elif s.status == SessionStatus.CONNECTED:
            self.notify(t("sessions.already_linked", name=s.name))
        else:
            self.notify(t("sessions.start_first", name=s.name))

    def _open_qr(self, sid: uuid.UUID) -> None:
        s = self.sessions.get(sid)
        self.app.push_screen(QRScreen(self.client, sid, session_name=s.name if s else ""))

    def action_start(self) -> None:
        s = self.selected()
        if s is not None:
            self._control(s, "start")

    def action_stop(self) -> None:
        s = self.selected()
        if s is not None:
            self._control(s, "stop")

    def action_logout(self) -> None:
        s = self.selected()
        if s is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._control(s, "logout")

        self.app.push_screen(ConfirmLogout(t("sessions.confirm_logout", name=s.name)), answered)

    @work(group="sessions-control")
    async def _control(self, s: SessionOut, what: str) -> None:
        calls = {
            "start": self.client.start_session,
            "stop": self.client.stop_session,
            "logout": self.client.logout_session,
        }
        if what == "start":
            self._link_after_start.add(s.id)
        try:
            await calls[what](s.id)
        except ZapError as exc:
            self._link_after_start.discard(s.id)
            self.notify(
                t("sessions.control_failed", name=s.name, reason=exc.message), severity="error"
            )
            return
        self.notify(t(f"sessions.done_{what}", name=s.name))
