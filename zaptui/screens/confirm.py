"""A yes/no modal (accept a ticket, reopen it): returns `True` or `False`."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from zaptui.i18n import t


class ConfirmScreen(ModalScreen[bool]):
    """Ask one question; Enter/y confirms, Esc/n cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "answer(False)", t("modal.cancel")),
        Binding("y", "answer(True)", t("modal.confirm")),
    ]

    def __init__(self, title: str, detail: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.detail = detail

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box"):
            yield Static(self.title_text, classes="modal-title")
            if self.detail:
                yield Static(self.detail, classes="modal-detail")
            with Horizontal(classes="modal-buttons"):
                yield Button(t("modal.confirm"), id="yes", variant="primary")
                yield Button(t("modal.cancel"), id="no")

    def on_mount(self) -> None:
        self.query_one("#yes", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
