"""The client panel: who the customer is, their tags, notes and previous tickets.

Returns the notes as edited (or None when unchanged / cancelled); the screen that
opened it saves them.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static, TextArea

from shared.protocol.clients import ClientOut
from shared.protocol.tickets import TicketOut
from zaptui.i18n import t


class ClientScreen(ModalScreen[str | None]):
    """Show one client; Ctrl+S saves the notes, Esc closes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", t("modal.close")),
        Binding("ctrl+s", "save", t("modal.save")),
    ]

    def __init__(self, client: ClientOut, tags: list[str], tickets: list[TicketOut]) -> None:
        super().__init__()
        self.client = client
        self.tags = tags
        self.tickets = tickets

    def compose(self) -> ComposeResult:
        c = self.client
        with Vertical(classes="modal-box wide"):
            yield Static(c.name or c.profile_name or c.phone or "?", classes="modal-title")
            info = Text()
            info.append(f"{t('client.phone')}: ", "bold")
            info.append(f"{c.phone or '—'}\n")
            if c.profile_name:
                info.append(f"{t('client.profile')}: ", "bold")
                info.append(f"{c.profile_name}\n")
            if c.email:
                info.append(f"{t('client.email')}: ", "bold")
                info.append(f"{c.email}\n")
            info.append(f"{t('client.tags')}: ", "bold")
            info.append(", ".join(self.tags) or "—")
            if c.blocked:
                info.append(f"\n{t('client.blocked')}", "bold red")
            yield Static(info, id="client-info")
            yield Label(t("client.tickets"))
            with VerticalScroll(id="client-tickets"):
                if not self.tickets:
                    yield Static(t("client.no_tickets"))
                for tk in self.tickets:
                    when = tk.created_at.astimezone().strftime("%d/%m/%Y %H:%M")
                    dep = tk.department.name if tk.department else "—"
                    status = t(f"status.{tk.status.name.lower()}")
                    yield Static(f"#{tk.number}  {when}  {dep}  {status}")
            yield Label(t("client.notes"))
            yield TextArea(c.notes or "", id="client-notes", compact=True)
            with Horizontal(classes="modal-buttons"):
                yield Button(t("modal.save"), id="ok", variant="primary")
                yield Button(t("modal.close"), id="cancel")

    @on(Button.Pressed, "#ok")
    def action_save(self) -> None:
        notes = self.query_one("#client-notes", TextArea).text
        self.dismiss(notes if notes != (self.client.notes or "") else None)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
