"""The login screen: server URL, e-mail, password; the reason of an expired login shown.

Invariants: the password never leaves this screen except in the login request; the
tokens go to the shared token store (the one `zapctl login` uses) through the app's
`on_tokens` callback; a wrong password, an unreachable server or a bad URL is one line
under the form and nothing else changes. The network call runs in a worker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, Static

from shared.client import DaemonUnreachable, Unauthorized, ValidationError, ZapError
from zaptui.i18n import t
from zaptui.messages import LoggedIn

if TYPE_CHECKING:
    from zaptui.app import ZapApp


class LoginScreen(Screen[None]):
    """Log in to a zapd."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "app.quit", t("app.quit")),
    ]

    def __init__(
        self,
        server: str,
        email: str | None = None,
        reason: str | None = None,
        password: str | None = None,
    ) -> None:
        super().__init__()
        self.server = server
        self.email = email or ""
        self.reason = reason
        self._auto_password = password

    @property
    def zap(self) -> ZapApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with Vertical(id="login-box"):
            yield Static(t("login.title"), id="login-title")
            yield Label(t("login.server"))
            yield Input(self.server, id="login-server", placeholder="http://127.0.0.1:8765")
            yield Label(t("login.email"))
            yield Input(self.email, id="login-email", placeholder="ana@empresa.com.br")
            yield Label(t("login.password"))
            yield Input(id="login-password", password=True)
            yield Button(t("login.submit"), id="login-submit", variant="primary")
            yield Static(self.reason or "", id="login-error")
        yield Footer()

    def on_mount(self) -> None:
        target = "#login-password" if self.email else "#login-email"
        self.query_one(target, Input).focus()
        if self._auto_password and self.email:
            self.query_one("#login-password", Input).value = self._auto_password
            self._auto_password = None
            self.submit()

    @on(Input.Submitted)
    def _next(self, event: Input.Submitted) -> None:
        order = ["login-server", "login-email", "login-password"]
        name = event.input.id or ""
        if name == "login-password" or not name:
            self.submit()
            return
        nxt = order[order.index(name) + 1]
        self.query_one(f"#{nxt}", Input).focus()

    @on(Button.Pressed, "#login-submit")
    def _pressed(self) -> None:
        self.submit()

    def _error(self, text: str) -> None:
        self.query_one("#login-error", Static).update(text)

    def submit(self) -> None:
        server = self.query_one("#login-server", Input).value.strip()
        email = self.query_one("#login-email", Input).value.strip()
        password = self.query_one("#login-password", Input).value
        if not server or not email or not password:
            self._error(t("login.missing"))
            return
        self._error(t("login.working"))
        self.query_one("#login-submit", Button).disabled = True
        self._login(server, email, password)

    @work(exclusive=True, group="login")
    async def _login(self, server: str, email: str, password: str) -> None:
        client = self.zap.new_client(server, email)
        try:
            await client.login(email, password)
            me = await client.me()
        except Unauthorized:
            self._fail(client, t("login.bad_credentials"))
            return
        except ValidationError as exc:
            self._fail(client, t("login.invalid", message=exc.message))
            return
        except DaemonUnreachable:
            self._fail(client, t("login.unreachable", server=client.base_url))
            return
        except (ZapError, ValueError) as exc:
            self._fail(client, str(exc))
            return
        self.query_one("#login-password", Input).value = ""
        self.post_message(LoggedIn(client, me))

    def _fail(self, client: object, text: str) -> None:
        self._error(text)
        self.query_one("#login-submit", Button).disabled = False
        self.zap.discard_client(client)
