"""The composer: where the agent writes to the customer or an internal note.

Invariants: Enter sends (a `Submitted` message up, the text cleared only by the screen
once it has queued the send); Shift+Enter and Ctrl+J insert a new line; `/` on an empty
composer asks for the quick replies; note mode is visible (label and colour) and sticks
until toggled; a file attached by path rides with the next send. The composer sends
nothing over the network itself: it posts messages up and the screen acts. While a
Cloud API ticket's 24-hour window is closed (`window_closed`, set by the screen) a
warning line says free text will be refused and what can still go out; in note mode the
line hides, since notes never reach WhatsApp.
"""

from __future__ import annotations

from typing import ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Label, TextArea

from zaptui.i18n import t


class ComposerInput(TextArea):
    """A TextArea where Enter sends and Shift+Enter / Ctrl+J break the line."""

    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class SlashTyped(Message):
        """`/` typed on an empty composer: open the quick replies."""

    class Edited(Message):
        """The text changed (drives the agent's typing indicator)."""

        def __init__(self, empty: bool) -> None:
            super().__init__()
            self.empty = empty

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.post_message(self.Submitted(self.text))
            return
        if event.key in ("shift+enter", "ctrl+j"):
            event.stop()
            event.prevent_default()
            self.insert("\n")
            return
        if event.character == "/" and not self.text:
            event.stop()
            event.prevent_default()
            self.post_message(self.SlashTyped())
            return
        await super()._on_key(event)

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        self.post_message(self.Edited(not self.text))


class Composer(Vertical):
    """The mode line (reply / internal note, attachment) and the input."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+t", "toggle_note", t("composer.toggle_note")),
        Binding("ctrl+o", "attach", t("composer.attach")),
    ]

    note_mode: reactive[bool] = reactive(False)
    attachment: reactive[str | None] = reactive(None)
    window_closed: reactive[bool] = reactive(False)

    class AttachRequested(Message):
        """The agent wants to attach a file (the screen asks for its path)."""

    def compose(self) -> ComposeResult:
        yield Label(t("composer.window_closed"), id="composer-window")
        yield Label(t("composer.mode_reply"), id="composer-mode")
        yield ComposerInput(
            id="composer-input", soft_wrap=True, show_line_numbers=False, compact=True
        )

    @property
    def input(self) -> ComposerInput:
        return self.query_one(ComposerInput)

    def _label(self) -> str:
        mode = t("composer.mode_note") if self.note_mode else t("composer.mode_reply")
        if self.attachment:
            mode += "  " + t("composer.attached", path=self.attachment)
        return mode

    def on_mount(self) -> None:
        self._window_line()

    def _window_line(self) -> None:
        self.query_one("#composer-window", Label).display = self.window_closed and not (
            self.note_mode
        )

    def watch_note_mode(self, note: bool) -> None:
        self.set_class(note, "-note")
        if self.is_mounted:
            self.query_one("#composer-mode", Label).update(self._label())
            self._window_line()

    def watch_window_closed(self, closed: bool) -> None:
        self.set_class(closed, "-window-closed")
        if self.is_mounted:
            self._window_line()

    def watch_attachment(self, path: str | None) -> None:
        if self.is_mounted:
            self.query_one("#composer-mode", Label).update(self._label())

    def action_toggle_note(self) -> None:
        self.note_mode = not self.note_mode

    def action_attach(self) -> None:
        self.post_message(self.AttachRequested())

    def clear(self) -> None:
        self.input.clear()
        self.attachment = None
