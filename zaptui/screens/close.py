"""Close a ticket: a category, the farewell on or off, an optional farewell text."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from zaptui.i18n import t


@dataclass(frozen=True)
class CloseResult:
    """How the ticket is closed."""

    category_id: uuid.UUID | None
    farewell: bool
    message: str | None


class CloseScreen(ModalScreen[CloseResult | None]):
    """Confirm closing with its options; Esc cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", t("modal.cancel"))]

    def __init__(self, categories: list[tuple[str, uuid.UUID]]) -> None:
        super().__init__()
        self.categories = categories

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box"):
            yield Static(t("close.title"), classes="modal-title")
            yield Label(t("close.category"))
            yield Select(self.categories, id="close-category", prompt=t("close.no_category"))
            yield Checkbox(t("close.farewell"), True, id="close-farewell")
            yield Input(id="close-message", placeholder=t("close.message_hint"))
            with Horizontal(classes="modal-buttons"):
                yield Button(t("close.submit"), id="ok", variant="error")
                yield Button(t("modal.cancel"), id="cancel")

    def on_mount(self) -> None:
        self.query_one("#ok", Button).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def _ok(self) -> None:
        cat = self.query_one("#close-category", Select).value
        farewell = self.query_one("#close-farewell", Checkbox).value
        text = self.query_one("#close-message", Input).value.strip() or None
        self.dismiss(
            CloseResult(
                cat if isinstance(cat, uuid.UUID) else None,
                farewell or text is not None,
                text,
            )
        )

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
