"""Set a ticket's priority: returns the `Priority` chosen."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from shared.enums import Priority
from zaptui.i18n import t
from zaptui.model import PRIORITY_ORDER


class PriorityScreen(ModalScreen[Priority | None]):
    """Pick a priority; Esc cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", t("modal.cancel"))]

    def __init__(self, current: Priority) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box"):
            yield Static(t("priority.title"), classes="modal-title")
            yield OptionList(
                *[Option(t(f"priority.{p.name.lower()}"), id=p.name) for p in PRIORITY_ORDER],
                id="priority-list",
            )

    def on_mount(self) -> None:
        ol = self.query_one(OptionList)
        ol.highlighted = PRIORITY_ORDER.index(self.current)
        ol.focus()

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(Priority[event.option.id or "NORMAL"])

    def action_cancel(self) -> None:
        self.dismiss(None)
