"""zaptui's application: login, the live connection to zapd, and the agent's screens.

Invariants:
- One `ZapClient` per login; its tokens are kept in the shared token store (the one
  `zapctl login` uses) and refreshed silently by the client. When a refresh is refused
  the app returns to the login screen with the reason.
- One event stream (`ZapClient.subscribe`) per login. It is opened before the REST
  snapshot is read, so nothing between the two is missed; it reconnects with backoff
  and resumes after the last seq, so nothing is missed or shown twice across an outage
  (the `Inbox` also merges by id). While it is down a banner says so.
- Messages typed while zapd is unreachable stay pending with the idempotency key they
  got when typed, and are sent once, in order, when zapd answers again.
- Every network call runs in a worker and goes through `call`, which maps failures to
  the banner (unreachable), the login screen (unauthorized) or a toast (the rest).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.screen import Screen

import shared.credentials as credentials_store
from shared.client import (
    DaemonUnreachable,
    Forbidden,
    RequestTimeout,
    ServerError,
    Subscription,
    Unauthorized,
    ZapClient,
    ZapError,
)
from shared.enums import TicketStatus
from shared.errors import ErrorCode
from shared.protocol.auth import Me, TokenPair
from shared.protocol.events import EventEnvelope
from shared.protocol.messages import MessageSend
from shared.protocol.tickets import TicketOut
from zaptui.config import TuiSettings
from zaptui.i18n import set_language, t
from zaptui.messages import LoggedIn, LoginExpired, SendRequested, TypingChanged
from zaptui.model import Change, Inbox, Pending
from zaptui.screens.audit import AuditScreen
from zaptui.screens.login import LoginScreen
from zaptui.screens.main import MainScreen
from zaptui.screens.metrics import MetricsScreen
from zaptui.screens.sessions import SessionsScreen

_T = TypeVar("_T")
MAIN_COMMANDS = [
    ("accept", "main.accept"),
    ("transfer", "main.transfer"),
    ("close_ticket", "main.close"),
    ("reopen", "main.reopen"),
    ("tags", "main.tags"),
    ("priority", "main.priority"),
    ("client", "main.client"),
    ("quick", "main.quick"),
    ("note", "main.note"),
]
_TRANSIENT = (DaemonUnreachable, RequestTimeout, ServerError)
TICKETS_AT_START = 1000


class CredentialStore(Protocol):
    """Where tokens are kept (`shared.credentials` in real use)."""

    def load(self, server: str) -> credentials_store.Stored | None: ...
    def save(self, server: str, stored: credentials_store.Stored) -> str: ...
    def forget(self, server: str) -> bool: ...


class ZapApp(App[None]):
    """The agent UI."""

    CSS_PATH = "app.tcss"
    TITLE = "zap"
    ENABLE_COMMAND_PALETTE = True

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", t("app.quit")),
        Binding("f9", "toggle_theme", t("app.theme")),
        Binding("f10", "toggle_bell", t("app.bell")),
        Binding("ctrl+l", "logout", t("app.logout")),
        Binding("f5", "sessions", t("app.sessions")),
        Binding("f6", "metrics", t("app.metrics")),
        Binding("f7", "audit", t("app.audit")),
    ]

    online: reactive[bool] = reactive(True)

    def __init__(
        self,
        settings: TuiSettings | None = None,
        *,
        credentials: CredentialStore = credentials_store,
        inbox: Inbox | None = None,
    ) -> None:
        super().__init__()
        self._preset = inbox
        self.settings = settings or TuiSettings()
        set_language(self.settings.lang)
        self.store = credentials
        self.client: ZapClient | None = None
        self.inbox: Inbox | None = None
        self.subscription: Subscription | None = None
        self.main: MainScreen | None = None
        self._email: str | None = self.settings.email
        self._clients: list[ZapClient] = []
        self._flushing = False
        self._agents: list[tuple[str, uuid.UUID]] | None = None
        self.theme = "textual-light" if self.settings.theme == "light" else "textual-dark"

    # ------------------------------------------------------------------ start, login

    def on_mount(self) -> None:
        self.set_interval(0.5, self._watch_stream)
        if self._preset is not None:  # a given inbox, no daemon: snapshots and benchmarks
            self.inbox = self._preset
            self.main = MainScreen()
            self.push_screen(self.main)
            return
        password = self.settings.password.get_secret_value() if self.settings.password else None
        stored = self.store.load(self.settings.server)
        if password and self.settings.email:
            self.push_screen(LoginScreen(self.settings.server, self.settings.email, None, password))
        elif stored is not None:
            self._email = stored.email
            self.resume(stored)
        else:
            self.push_screen(LoginScreen(self.settings.server, self._email))

    def new_client(self, server: str, email: str | None = None) -> ZapClient:
        """A client on `server` whose new tokens go to the token store."""
        client = ZapClient(server, on_tokens=None)
        self._email = email or self._email

        def keep(pair: TokenPair) -> None:
            self.store.save(
                client.base_url,
                credentials_store.Stored(pair.access_token, pair.refresh_token, self._email),
            )

        client.on_tokens = keep
        self._clients.append(client)
        return client

    def discard_client(self, client: object) -> None:
        if isinstance(client, ZapClient) and client is not self.client:
            self.run_worker(client.aclose(), group="close")

    @work(group="login", exclusive=True)
    async def resume(self, stored: credentials_store.Stored) -> None:
        """Use the stored login; an expired one goes to the login screen with the reason."""
        client = self.new_client(self.settings.server, stored.email)
        client.set_tokens(stored.access_token, stored.refresh_token)
        try:
            me = await client.me()
        except Unauthorized as exc:
            self.store.forget(client.base_url)
            self.push_screen(
                LoginScreen(client.base_url, stored.email, t("login.expired", reason=exc.message))
            )
            return
        except ZapError as exc:
            reason = (
                t("login.unreachable", server=client.base_url)
                if isinstance(exc, DaemonUnreachable)
                else str(exc)
            )
            self.push_screen(LoginScreen(client.base_url, stored.email, reason))
            return
        self.post_message(LoggedIn(client, me))

    @on(LoggedIn)
    def _logged_in(self, event: LoggedIn) -> None:
        self.start_session(event.client, event.me)

    def start_session(self, client: ZapClient, me: Me) -> None:
        """Show the main screen for this login and open the event stream."""
        self.client = client
        self.inbox = Inbox(me)
        self._agents = None
        self.online = True
        self.main = MainScreen()
        self.switch_or_push(self.main)
        self.sub_title = me.name
        self.stream()

    def switch_or_push(self, screen: Any) -> None:
        if len(self.screen_stack) > 1:
            self.switch_screen(screen)
        else:
            self.push_screen(screen)

    @on(LoginExpired)
    def _expired(self, event: LoginExpired) -> None:
        self.end_session(event.reason, forget=True)

    def end_session(self, reason: str | None, *, forget: bool) -> None:
        """Back to the login screen (after a logout or a refused login)."""
        client = self.client
        server = client.base_url if client else self.settings.server
        self.workers.cancel_group(self, "stream")
        if self.subscription is not None:
            self.run_worker(self.subscription.aclose(), group="close")
            self.subscription = None
        if forget:
            self.store.forget(server)
        self.client = None
        self.inbox = None
        self.main = None
        self.switch_or_push(LoginScreen(server, self._email, reason))
        if client is not None:
            self.run_worker(client.aclose(), group="close")

    @work(group="login", exclusive=True)
    async def action_logout(self) -> None:
        client = self.client
        if client is None:
            return
        with contextlib.suppress(ZapError):
            await client.logout()
        self.end_session(t("login.logged_out"), forget=True)

    # ------------------------------------------------------------------ the stream

    @work(group="stream", exclusive=True)
    async def stream(self) -> None:
        """Follow the event stream for this login, resuming after outages."""
        client = self.client
        if client is None:
            return
        delay = self.settings.reconnect_initial
        sub = client.subscribe(
            backoff_initial=self.settings.reconnect_initial,
            backoff_max=self.settings.reconnect_max,
        )
        self.subscription = sub
        while True:  # the first connection: the Subscription heals itself after that
            try:
                await sub.__aenter__()
                break
            except Unauthorized as exc:
                self.post_message(LoginExpired(t("login.expired", reason=exc.message)))
                return
            except ZapError:
                self.online = False
                await asyncio.sleep(delay)
                delay = min(self.settings.reconnect_max, delay * 2)
        self.online = True
        await self.load_snapshot()
        try:
            async for event in sub:
                self.apply_event(event)
        except Unauthorized as exc:
            self.post_message(LoginExpired(t("login.expired", reason=exc.message)))
        except ZapError as exc:
            self.notify(str(exc), severity="error")
        finally:
            await sub.aclose()

    def _watch_stream(self) -> None:
        sub = self.subscription
        if sub is None or self.client is None:
            return
        connected = sub.connected
        if connected != self.online:
            self.online = connected

    def watch_online(self, online: bool) -> None:
        if self.main is not None and self.main.is_mounted:
            self.main.set_online(online)
        if online and self.inbox is not None and self.inbox.pending:
            self.flush_pending()

    async def load_snapshot(self) -> None:
        """Read departments and the open tickets (after the stream is open)."""
        client, inbox = self.client, self.inbox
        if client is None or inbox is None:
            return
        deps = await self.call(client.list_departments())
        if deps is not None:
            inbox.set_departments(deps)
        count = 0
        try:
            async for ticket in client.iterate(
                client.list_tickets, status=[TicketStatus.PENDING, TicketStatus.OPEN], limit=200
            ):
                inbox.put_ticket(ticket)
                count += 1
                if count >= TICKETS_AT_START:
                    break
        except ZapError as exc:
            self._failed(exc, quiet=False)
        if self.main is not None:
            self.main.redraw()
            self.main.load_previews()

    def apply_event(self, event: EventEnvelope) -> Change:
        """Apply one event to the inbox and the screen; notify when it deserves it."""
        inbox = self.inbox
        if inbox is None:
            return Change()
        change = inbox.apply(event)
        for tid in change.fetch:
            self.fetch_ticket(tid)
        for key, fields in change.notify:
            self.alert(t(key, **fields))
        if self.main is not None and change:
            self.main.apply_change(change)
        return change

    @work(group="fetch")
    async def fetch_ticket(self, ticket_id: uuid.UUID) -> None:
        client = self.client
        if client is None or self.inbox is None:
            return
        try:
            ticket = await client.get_ticket(ticket_id)
        except ZapError as exc:
            if not isinstance(exc, Forbidden) and "NOT_FOUND" not in (exc.code or ""):
                self._failed(exc, quiet=True)
            elif self.inbox is not None:  # no longer visible to this agent
                self.inbox.rows.pop(ticket_id, None)
                if self.main is not None:
                    self.main.schedule_redraw()
            return
        self.ticket_changed(ticket)

    def ticket_changed(self, ticket: TicketOut) -> None:
        """A fresh copy of a ticket arrived (an action's answer or a fetch)."""
        if self.inbox is None:
            return
        before = self.inbox.rows.get(ticket.id)
        was_waiting = before is not None and self.inbox.waits_for_me(before.ticket)
        if not was_waiting and self.inbox.waits_for_me(ticket):
            self.alert(t("notify.new_ticket", number=ticket.number))
        row = self.inbox.put_ticket(ticket)
        if self.main is not None:
            self.main.apply_change(Change(tickets={row.id}))

    def alert(self, text: str) -> None:
        """A notification: a toast and/or the terminal bell, as configured."""
        if self.settings.toasts:
            self.notify(text, timeout=6)
        if self.settings.bell:
            self.bell()

    # ------------------------------------------------------------------ calls

    async def call(self, awaitable: Awaitable[_T], *, quiet: bool = False) -> _T | None:
        """Await one API call; on failure say so (banner, login or toast) and return None."""
        try:
            result = await awaitable
        except ZapError as exc:
            self._failed(exc, quiet=quiet)
            return None
        if not self.online and self.subscription is not None and self.subscription.connected:
            self.online = True
        return result

    def _failed(self, exc: ZapError, *, quiet: bool) -> None:
        if isinstance(exc, DaemonUnreachable):
            self.online = False
            return
        if isinstance(exc, Unauthorized):
            self.post_message(LoginExpired(t("login.expired", reason=exc.message)))
            return
        if not quiet:
            self.notify(exc.message or str(exc), severity="error", timeout=8)

    async def agents(self) -> list[tuple[str, uuid.UUID]]:
        """The people a ticket can go to (empty when the caller may not list users)."""
        if self._agents is None and self.client is not None:
            page = await self.call(self.client.list_users(active=True, limit=200), quiet=True)
            self._agents = [(u.name, u.id) for u in page.items] if page else []
        return self._agents or []

    # ------------------------------------------------------------------ sending

    @on(SendRequested)
    def _send_requested(self, event: SendRequested) -> None:
        inbox = self.inbox
        if inbox is None:
            return
        pending = Pending(
            key=f"tui:{uuid.uuid4()}",
            ticket_id=event.ticket_id,
            body=event.body,
            note=event.note,
            media_path=event.media_path,
        )
        inbox.add_pending(pending)
        if self.main is not None:
            self.main.apply_change(Change(chats={event.ticket_id}))
        if self.online:
            self.flush_pending()

    @work(group="send", exclusive=True)
    async def flush_pending(self) -> None:
        """Send every pending message once, oldest first (stops at the first outage)."""
        inbox, client = self.inbox, self.client
        if inbox is None or client is None:
            return
        for key in list(inbox.pending):
            p = inbox.pending.get(key)
            if p is None:
                continue
            p.attempts += 1
            try:
                media_id = None
                if p.media_path:
                    path = Path(p.media_path)
                    data = await asyncio.to_thread(path.read_bytes)
                    media_id = (await client.upload_media(data, path.name)).id
                sent = await client.send_message(
                    MessageSend(ticket_id=p.ticket_id, body=p.body, note=p.note, media_id=media_id),
                    idempotency_key=p.key,
                )
            except _TRANSIENT:
                self.online = False
                return  # kept; sent when zapd answers again
            except (ZapError, OSError, ValueError) as exc:
                reason = getattr(exc, "message", None) or str(exc)
                if isinstance(exc, ZapError) and exc.code == ErrorCode.WINDOW_CLOSED:
                    # The daemon's text says since when and names the templates: show it
                    # whole, and re-read the ticket so the header shows the window closed.
                    self.notify(
                        t("send.window_closed", reason=reason), severity="error", timeout=15
                    )
                    self.fetch_ticket(p.ticket_id)
                inbox.fail_pending(key, reason)
                inbox.pending.pop(key, None)
                if self.main is not None:
                    self.main.apply_change(Change(chats={p.ticket_id}))
                continue
            inbox.settle_pending(key, sent)
            if self.main is not None:
                self.main.apply_change(Change(chats={p.ticket_id}))

    @on(TypingChanged)
    def _typing(self, event: TypingChanged) -> None:
        sub = self.subscription
        if sub is None:
            return
        self.run_worker(sub.send_typing(event.ticket_id, event.typing), group="typing")

    # ------------------------------------------------------------------ app actions

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    def action_toggle_bell(self) -> None:
        self.settings.bell = not self.settings.bell
        self.notify(t("app.bell_on") if self.settings.bell else t("app.bell_off"))
        if self.main is not None:
            self.main.redraw()

    def _supervisor(self) -> bool:
        return self.inbox is not None and self.inbox.is_supervisor

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("sessions", "metrics", "audit"):
            return self._supervisor()  # hidden from agents
        return True

    def action_sessions(self) -> None:
        self._admin_screen("sessions")

    def action_metrics(self) -> None:
        self._admin_screen("metrics")

    def action_audit(self) -> None:
        self._admin_screen("audit")

    def _admin_screen(self, name: str) -> None:
        if not self._supervisor() or self.client is None:
            return
        screen = ADMIN_SCREENS[name](self.client)
        self.push_screen(screen)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The command palette (Ctrl+P): the app's actions, and the main screen's."""
        yield from super().get_system_commands(screen)
        yield SystemCommand(t("app.theme"), t("app.theme"), self.action_toggle_theme)
        yield SystemCommand(t("app.bell"), t("app.bell"), self.action_toggle_bell)
        if self.client is not None:
            yield SystemCommand(t("app.logout"), t("app.logout"), self.action_logout)
        if self._supervisor():
            for name in ADMIN_SCREENS:
                label = t(f"app.{name}")
                yield SystemCommand(label, label, lambda n=name: self._admin_screen(n))
        if isinstance(screen, MainScreen):
            for action, key in MAIN_COMMANDS:
                yield SystemCommand(t(key), t(key), getattr(screen, f"action_{action}"))

    async def action_quit(self) -> None:
        for c in self._clients:
            with contextlib.suppress(Exception):
                await c.aclose()
        self.exit()


# Supervisor and admin screens (F5, F6, F7), each built as `Screen(client)`.
ADMIN_SCREENS: dict[str, Callable[[ZapClient], Screen[Any]]] = {
    "sessions": SessionsScreen,
    "metrics": MetricsScreen,
    "audit": AuditScreen,
}


def make_app(
    settings: TuiSettings | None = None,
    *,
    credentials: CredentialStore = credentials_store,
    inbox: Inbox | None = None,
) -> ZapApp:
    """The app as `zaptui` runs it; tests build theirs here too.

    With `inbox`, the app shows that data on the main screen without any daemon (the
    snapshot tests and the benchmark use it).
    """
    return ZapApp(settings, credentials=credentials, inbox=inbox)
