"""Link a WhatsApp session: its QR code in the terminal, or a pairing code.

Invariants:
- The code shown is always the session's current one: loaded from `GET /sessions/{id}/qr`
  once the event stream is open (so no rotation between the two is missed), then
  replaced on every `session.qr` event of this session (a rotation redraws it).
- The QR is shown only while the session is WAITING_QR; any other status hides it and
  says why (CONNECTED: linked, with the number). It is never drawn clipped: the widget
  says the terminal is too small instead (see `zaptui.widgets.qr`).
- The pairing-code alternative asks `POST /sessions/{id}/pair` for the number typed;
  refusals show the daemon's message inline and change nothing.
- Network calls run in workers; the screen's clock (`clock`) is the only time source
  of the expiry countdown.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shlex
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingsMap, BindingType
from textual.containers import Horizontal, Vertical
from textual.dom import DOMNode
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Static

from shared.client import ZapClient, ZapError
from shared.enums import SessionStatus
from shared.protocol.events import SESSION_QR, SESSION_STATUS, EventEnvelope
from zaptui.i18n import t
from zaptui.widgets.qr import QRCode

Clock = Callable[[], datetime]
EventHandler = Callable[[EventEnvelope], Awaitable[None] | None]

RETRY_MAX = 10.0  # seconds between attempts to open the event stream, at most


def localize_bindings(node: DOMNode) -> None:
    """Replace binding descriptions that are i18n keys by their text in the current language.

    Class-level BINDINGS are built at import, before the app picks its language; each
    screen calls this from `__init__` so its footer speaks the language chosen.
    """
    node._bindings = BindingsMap.from_keys(
        {
            key: [dataclasses.replace(b, description=t(b.description)) for b in bindings]
            for key, bindings in node._bindings.key_to_bindings.items()
        }
    )


def status_text(status: SessionStatus) -> str:
    """The status of a session in words."""
    return t(f"sessions.status.{status.name}")


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def event_session_id(event: EventEnvelope) -> uuid.UUID | None:
    """The session a `session.*` event is about (None when it names none readable)."""
    try:
        return uuid.UUID(str(event.data.get("id")))
    except ValueError:
        return None


async def follow_events(
    client: ZapClient,
    on_event: EventHandler,
    *,
    on_open: Callable[[], Awaitable[None]] | None = None,
    on_error: Callable[[ZapError], None] | None = None,
) -> None:
    """Feed every live event to `on_event` until cancelled; `on_open` runs once connected.

    The stream itself reconnects and resumes without gaps; only a failure to open it at
    all (or a final refusal) lands here, and then it is opened again with backoff.
    """
    delay = 0.5
    opened = False
    while True:
        try:
            async with client.subscribe() as sub:
                if not opened and on_open is not None:
                    opened = True
                    await on_open()
                delay = 0.5
                async for event in sub:
                    result = on_event(event)
                    if result is not None:
                        await result
        except ZapError as exc:
            if on_error is not None:
                on_error(exc)
        await asyncio.sleep(delay)
        delay = min(RETRY_MAX, delay * 2)


class QRScreen(Screen[SessionStatus | None]):
    """Shows a session's QR code as it rotates, and offers a pairing code instead.

    Dismissed (Esc) with the session's last known status.
    """

    DEFAULT_CSS = """
    QRScreen #qr-body {
        height: 1fr;
    }
    QRScreen #qr-code {
        background: $background;
    }
    QRScreen #qr-side {
        width: 34;
        padding: 0 1;
        border-left: vkey $foreground 20%;
    }
    QRScreen #qr-title {
        text-style: bold;
        color: $accent;
    }
    QRScreen #qr-status {
        margin-top: 1;
    }
    QRScreen #qr-status.connected {
        color: $success;
        text-style: bold;
    }
    QRScreen #qr-status.problem {
        color: $error;
    }
    QRScreen #qr-expiry, QRScreen #qr-sandbox {
        color: $text-muted;
    }
    QRScreen #qr-help {
        margin-top: 1;
    }
    QRScreen #pair-title {
        margin-top: 1;
        text-style: bold;
    }
    QRScreen #pair-row {
        height: 1;
    }
    QRScreen #pair-phone {
        width: 1fr;
    }
    QRScreen #pair-button {
        width: auto;
        min-width: 8;
        margin-left: 1;
    }
    QRScreen #pair-code {
        margin-top: 1;
        text-style: bold;
        color: $accent;
    }
    QRScreen #pair-error {
        color: $error;
    }
    QRScreen #qr-linked {
        display: none;
        width: 1fr;
        height: 1fr;
        content-align: center middle;
        text-style: bold;
        color: $success;
    }
    QRScreen.linked #qr-linked {
        display: block;
    }
    QRScreen.linked #qr-code {
        display: none;
    }
    """

    AUTO_FOCUS = ""  # keys go to the screen (p, r, Esc) until the agent picks the input
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "qr.key_back"),
        Binding("p", "pair", "qr.key_pair"),
        Binding("r", "reload", "qr.key_reload"),
    ]

    def __init__(
        self,
        client: ZapClient,
        session_id: uuid.UUID,
        *,
        session_name: str = "",
        clock: Clock | None = None,
    ) -> None:
        super().__init__()
        localize_bindings(self)
        self.client = client
        self.session_id = session_id
        self.session_name = session_name
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self.status: SessionStatus | None = None
        self.qr: str | None = None
        self.expires_at: datetime | None = None
        self.sandbox = False
        self.phone: str | None = None
        self.pairing_code: str | None = None
        self.live = False  # the event stream is open (tests wait for it)
        self.qr_changes = 0  # how many codes were drawn (a rotation adds one)

    def compose(self) -> ComposeResult:
        with Horizontal(id="qr-body"):
            yield QRCode(id="qr-code")
            yield Static(id="qr-linked")
            with Vertical(id="qr-side"):
                yield Static(self.session_name or t("qr.title"), id="qr-title")
                yield Static(t("qr.loading"), id="qr-status")
                yield Static("", id="qr-expiry")
                yield Static(t("qr.help"), id="qr-help")
                yield Static("", id="qr-sandbox")
                yield Static(t("qr.pair_title"), id="pair-title")
                with Horizontal(id="pair-row"):
                    yield Input(
                        placeholder=t("qr.pair_placeholder"),
                        id="pair-phone",
                        compact=True,
                        max_length=32,
                    )
                    yield Button(t("qr.pair_button"), id="pair-button", compact=True)
                yield Static("", id="pair-error")
                yield Static("", id="pair-code")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#pair-phone", Input).cursor_blink = False
        self._follow()
        self.set_interval(1.0, self._tick)

    # ----------------------------------------------------------------- data

    @work(exclusive=True, group="qr-events")
    async def _follow(self) -> None:
        await follow_events(
            self.client, self.apply_event, on_open=self._opened, on_error=self._stream_error
        )

    async def _opened(self) -> None:
        self.live = True
        await self._load()

    def _stream_error(self, exc: ZapError) -> None:
        self.live = False
        self.notify(t("live.unavailable", reason=exc.message), severity="warning")

    async def _load(self) -> None:
        try:
            got = await self.client.session_qr(self.session_id)
            if not self.session_name:
                self.session_name = (await self.client.get_session(self.session_id)).name
                self.query_one("#qr-title", Static).update(self.session_name)
        except ZapError as exc:
            self._set_status_line(t("qr.load_failed", reason=exc.message), "problem")
            return
        self.sandbox = got.sandbox
        self.show_qr(got.qr, got.expires_at, status=got.status)

    def apply_event(self, event: EventEnvelope) -> None:
        """Follow this session's QR rotations and status changes."""
        if event.type not in (SESSION_QR, SESSION_STATUS):
            return
        if event_session_id(event) != self.session_id:
            return
        if event.type == SESSION_QR:
            qr = event.data.get("qr")
            self.show_qr(
                qr if isinstance(qr, str) else None,
                _parse_time(event.data.get("expires_at")),
                status=SessionStatus.WAITING_QR,
            )
            return
        try:
            status = SessionStatus(int(event.data["status"]))
        except (KeyError, TypeError, ValueError):
            return
        phone = event.data.get("phone")
        if isinstance(phone, str):
            self.phone = phone
        reason = event.data.get("reason")
        self.show_status(status, reason if isinstance(reason, str) else None)

    # ----------------------------------------------------------------- view

    def show_qr(
        self, qr: str | None, expires_at: datetime | None, *, status: SessionStatus
    ) -> None:
        """Draw `qr` (a rotation when it changes) with its expiry, for a session in `status`."""
        if qr is not None and qr != self.qr:
            self.qr_changes += 1
        self.qr = qr if status == SessionStatus.WAITING_QR else None
        self.expires_at = expires_at if self.qr else None
        self.query_one(QRCode).payload = self.qr
        self.show_status(status, None)

    def show_status(self, status: SessionStatus, reason: str | None) -> None:
        """Say where the session stands; only WAITING_QR keeps a code on screen."""
        self.status = status
        linked = status == SessionStatus.CONNECTED
        self.set_class(linked, "linked")
        if status != SessionStatus.WAITING_QR:
            self.qr = None
            self.expires_at = None
            self.query_one(QRCode).payload = None
        if linked:
            text = t("qr.connected", phone=self.phone or "—")
            self.query_one("#qr-linked", Static).update(f"✓ {text}")
            self._set_status_line(text, "connected")
        elif status == SessionStatus.WAITING_QR:
            line = t("qr.waiting") if self.qr else t("qr.waiting_code")
            self._set_status_line(line, "")
        elif status == SessionStatus.ERROR:
            self._set_status_line(
                t("qr.status_reason", status=status_text(status), reason=reason or "—"), "problem"
            )
        elif status == SessionStatus.DISCONNECTED:
            self._set_status_line(t("qr.disconnected"), "problem")
        else:
            self._set_status_line(status_text(status), "")
        sandbox = self.query_one("#qr-sandbox", Static)
        name = shlex.quote(self.session_name or str(self.session_id))
        sandbox.update(t("qr.sandbox", name=name) if self.sandbox and self.qr else "")
        self._tick()

    def _set_status_line(self, text: str, cls: str) -> None:
        line = self.query_one("#qr-status", Static)
        line.update(text)
        line.set_classes(cls)

    def _tick(self) -> None:
        expiry = self.query_one("#qr-expiry", Static)
        if self.qr is None or self.expires_at is None:
            expiry.update("")
            return
        left = int((self.expires_at - self.clock()).total_seconds())
        expiry.update(t("qr.expires_in", seconds=left) if left > 0 else t("qr.expired"))

    # ----------------------------------------------------------------- actions

    def action_close(self) -> None:
        self.dismiss(self.status)

    def action_reload(self) -> None:
        self._reload()

    @work(exclusive=True, group="qr-reload")
    async def _reload(self) -> None:
        await self._load()

    def action_pair(self) -> None:
        self.query_one("#pair-phone", Input).focus()

    @on(Input.Submitted, "#pair-phone")
    @on(Button.Pressed, "#pair-button")
    def _ask_code(self) -> None:
        phone = self.query_one("#pair-phone", Input).value.strip()
        error = self.query_one("#pair-error", Static)
        if not phone:
            error.update(t("qr.pair_need_phone"))
            return
        error.update("")
        self._request_code(phone)

    @work(exclusive=True, group="qr-pair")
    async def _request_code(self, phone: str) -> None:
        try:
            got = await self.client.pair_session(self.session_id, phone)
        except ZapError as exc:
            self.query_one("#pair-error", Static).update(exc.message)
            return
        self.pairing_code = got.code
        local = got.expires_at.astimezone().strftime("%H:%M:%S")
        self.query_one("#pair-code", Static).update(
            t("qr.pair_code", code=got.display, phone=got.phone, until=local)
        )
