"""Quick replies with fuzzy search: type to filter, Enter picks; returns the reply's body."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.fuzzy import Matcher
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from shared.protocol.catalog import QuickReplyOut
from zaptui.i18n import t


class QuickRepliesScreen(ModalScreen[QuickReplyOut | None]):
    """The company's quick replies, best fuzzy match first."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", t("modal.cancel")),
        Binding("down", "down", show=False),
        Binding("up", "up", show=False),
    ]

    def __init__(self, replies: list[QuickReplyOut]) -> None:
        super().__init__()
        self.replies = replies
        self.shown: list[QuickReplyOut] = list(replies)

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box wide"):
            yield Static(t("quick.title"), classes="modal-title")
            yield Input(id="quick-search", placeholder=t("quick.search"))
            yield OptionList(id="quick-list")

    def on_mount(self) -> None:
        self._fill("")
        self.query_one(Input).focus()

    def _fill(self, query: str) -> None:
        ol = self.query_one(OptionList)
        ol.clear_options()
        if query:
            matcher = Matcher(query)
            scored = [
                (max(matcher.match(r.shortcut), matcher.match(r.body) * 0.8), r)
                for r in self.replies
            ]
            self.shown = [r for s, r in sorted(scored, key=lambda x: -x[0]) if s > 0]
        else:
            self.shown = sorted(self.replies, key=lambda r: r.shortcut)
        if not self.shown:
            ol.add_option(Option(t("quick.none"), disabled=True))
            return
        for r in self.shown:
            body = r.body.replace("\n", " ")
            prompt = Text.assemble((f"/{r.shortcut}", "bold"), "  ", (body[:70], "dim"))
            ol.add_option(Option(prompt))
        ol.highlighted = 0

    @on(Input.Changed)
    def _search(self, event: Input.Changed) -> None:
        self._fill(event.value.strip().lstrip("/"))

    @on(Input.Submitted)
    def _enter(self) -> None:
        ol = self.query_one(OptionList)
        if self.shown and ol.highlighted is not None:
            self.dismiss(self.shown[ol.highlighted])

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        if self.shown:
            self.dismiss(self.shown[event.option_index])

    def action_down(self) -> None:
        self.query_one(OptionList).action_cursor_down()

    def action_up(self) -> None:
        self.query_one(OptionList).action_cursor_up()

    def action_cancel(self) -> None:
        self.dismiss(None)
