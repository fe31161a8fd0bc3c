"""Transfer a ticket: to a department and/or a person, with an optional message."""

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
class TransferResult:
    """Where the ticket goes and what the customer is told."""

    department_id: uuid.UUID | None
    user_id: uuid.UUID | None
    message: str | None
    notify_customer: bool


class TransferScreen(ModalScreen[TransferResult | None]):
    """Pick a department and/or an agent; Esc cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", t("modal.cancel"))]

    def __init__(
        self,
        departments: list[tuple[str, uuid.UUID]],
        agents: list[tuple[str, uuid.UUID]],
        current_department: uuid.UUID | None = None,
    ) -> None:
        super().__init__()
        self.departments = departments
        self.agents = agents
        self.current_department = current_department

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box"):
            yield Static(t("transfer.title"), classes="modal-title")
            yield Label(t("transfer.department"))
            yield Select(self.departments, id="transfer-department", prompt=t("transfer.keep"))
            yield Label(t("transfer.agent"))
            yield Select(self.agents, id="transfer-agent", prompt=t("transfer.nobody"))
            yield Label(t("transfer.message"))
            yield Input(id="transfer-message", placeholder=t("transfer.message_hint"))
            yield Checkbox(t("transfer.notify"), True, id="transfer-notify")
            yield Static("", id="transfer-error", classes="modal-error")
            with Horizontal(classes="modal-buttons"):
                yield Button(t("transfer.submit"), id="ok", variant="primary")
                yield Button(t("modal.cancel"), id="cancel")

    def on_mount(self) -> None:
        self.query_one("#transfer-department", Select).focus()

    def _result(self) -> TransferResult | None:
        dep = self.query_one("#transfer-department", Select).value
        who = self.query_one("#transfer-agent", Select).value
        dep_id = dep if isinstance(dep, uuid.UUID) else None
        user_id = who if isinstance(who, uuid.UUID) else None
        if dep_id is None and user_id is None:
            self.query_one("#transfer-error", Static).update(t("transfer.pick_one"))
            return None
        text = self.query_one("#transfer-message", Input).value.strip() or None
        notify = self.query_one("#transfer-notify", Checkbox).value
        if text and not notify:
            notify = True  # a message is for the customer: it needs the notice
        return TransferResult(dep_id, user_id, text, notify)

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def _ok(self) -> None:
        result = self._result()
        if result is not None:
            self.dismiss(result)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
