"""Ask for a file path: a file to attach (must exist) or where to save an attachment."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from zaptui.i18n import t

MAX_ATTACHMENT = 64 * 1024 * 1024


class PathScreen(ModalScreen[Path | None]):
    """Type a path, Enter accepts; `must_exist` checks it is a readable file."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", t("modal.cancel"))]

    def __init__(self, title: str, value: str = "", *, must_exist: bool) -> None:
        super().__init__()
        self.title_text = title
        self.value = value
        self.must_exist = must_exist

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box"):
            yield Static(self.title_text, classes="modal-title")
            yield Input(self.value, id="path-input", placeholder="~/arquivo.pdf")
            yield Static("", id="path-error", classes="modal-error")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _ok(self, event: Input.Submitted) -> None:
        raw = event.value.strip()
        if not raw:
            return
        path = Path(raw).expanduser()
        error = None
        if self.must_exist:
            if not path.is_file():
                error = t("path.not_file", path=raw)
            elif path.stat().st_size > MAX_ATTACHMENT:
                error = t("path.too_big", path=raw)
        elif path.is_dir():
            error = t("path.is_dir", path=raw)
        elif not path.parent.is_dir():
            error = t("path.no_dir", path=str(path.parent))
        if error:
            self.query_one("#path-error", Static).update(error)
            return
        self.dismiss(path)

    def action_cancel(self) -> None:
        self.dismiss(None)
