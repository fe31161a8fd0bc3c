"""Tag the ticket's client: returns the whole new set of tag ids."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, SelectionList, Static

from zaptui.i18n import t


@dataclass(frozen=True)
class TagsResult:
    """The client's tags after the change."""

    tag_ids: list[uuid.UUID]


class TagsScreen(ModalScreen[TagsResult | None]):
    """Tick the tags (space), Enter on the button saves; Esc cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", t("modal.cancel"))]

    def __init__(self, tags: list[tuple[str, uuid.UUID]], chosen: set[uuid.UUID]) -> None:
        super().__init__()
        self.tags = tags
        self.chosen = chosen

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box"):
            yield Static(t("tags.title"), classes="modal-title")
            if not self.tags:
                yield Static(t("tags.none"), classes="modal-detail")
            yield SelectionList[uuid.UUID](
                *[(name, tid, tid in self.chosen) for name, tid in self.tags], id="tags-list"
            )
            with Horizontal(classes="modal-buttons"):
                yield Button(t("modal.save"), id="ok", variant="primary")
                yield Button(t("modal.cancel"), id="cancel")

    def on_mount(self) -> None:
        self.query_one(SelectionList).focus()

    @on(Button.Pressed, "#ok")
    def _ok(self) -> None:
        self.dismiss(TagsResult(list(self.query_one(SelectionList).selected)))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
