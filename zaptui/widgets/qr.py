"""A QR code drawn in the terminal, readable by a phone camera on any theme.

Invariants:
- The code is painted with explicit colours, black ink on a white ground (`INK`,
  `PAPER`), never with the theme's colours, so it scans on dark and light themes alike.
- The quiet zone (`shared.qr.QUIET_ZONE` light modules around the code) is part of the
  drawing, painted white like the rest of the code.
- Two modules per cell vertically (half blocks), one horizontally: an N×N code needs N
  columns and ⌈N/2⌉ lines. When the widget is smaller than that it never draws a
  clipped code (which would not scan): it shows `qr.too_small` with both sizes.
- The drawing is centred in the widget; setting `payload` redraws it (a rotation).
"""

from __future__ import annotations

from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from shared.qr import half_blocks, matrix
from zaptui.i18n import t

INK = "#000000"
PAPER = "#ffffff"
QR_STYLE = Style(color=INK, bgcolor=PAPER)


class QRCode(Widget):
    """Draws `payload` as a QR code (black on white, quiet zone included), or says why not."""

    DEFAULT_CSS = """
    QRCode {
        width: 1fr;
        height: 1fr;
        min-width: 10;
        min-height: 3;
    }
    QRCode > .qr--message {
        color: $warning;
        text-style: bold;
    }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {"qr--message"}

    payload: reactive[str | None] = reactive(None, layout=False)

    def __init__(
        self,
        payload: str | None = None,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._lines: list[str] = []
        self.set_reactive(QRCode.payload, payload)
        self._draw(payload)

    def _draw(self, payload: str | None) -> None:
        self._lines = half_blocks(matrix(payload)) if payload else []

    def watch_payload(self, payload: str | None) -> None:
        self._draw(payload)
        self.refresh()

    @property
    def lines(self) -> list[str]:
        """The half-block drawing of the current payload (empty when there is none)."""
        return list(self._lines)

    @property
    def needed(self) -> Size:
        """The cells the whole code needs, quiet zone included."""
        if not self._lines:
            return Size(0, 0)
        return Size(len(self._lines[0]), len(self._lines))

    @property
    def fits(self) -> bool:
        """Tell whether the whole code fits the widget as it is sized now."""
        need, have = self.needed, self.content_size
        return need.width <= have.width and need.height <= have.height

    def message(self) -> str | None:
        """Return what the widget says instead of a code (None when it draws one)."""
        if not self._lines:
            return None
        if self.fits:
            return None
        need, have = self.needed, self.content_size
        return t(
            "qr.too_small",
            need_w=need.width,
            need_h=need.height,
            have_w=have.width,
            have_h=have.height,
        )

    def render_line(self, y: int) -> Strip:
        width, height = self.content_size
        blank = Strip.blank(width, self.rich_style)
        if not self._lines:
            return blank
        text = self.message()
        if text is not None:
            return self._message_line(y, width, height, text)
        need = self.needed
        top = (height - need.height) // 2
        row = y - top
        if not 0 <= row < need.height:
            return blank
        left = (width - need.width) // 2
        right = width - need.width - left
        base = self.rich_style
        return Strip(
            [
                Segment(" " * left, base),
                Segment(self._lines[row], QR_STYLE),
                Segment(" " * right, base),
            ],
            width,
        )

    def _message_line(self, y: int, width: int, height: int, text: str) -> Strip:
        wrapped = _wrap(text, max(1, width))
        top = max(0, (height - len(wrapped)) // 2)
        row = y - top
        if not 0 <= row < len(wrapped):
            return Strip.blank(width, self.rich_style)
        style = self.rich_style + self.get_component_rich_style("qr--message")
        line = wrapped[row][:width]
        pad = width - len(line)
        left = pad // 2
        return Strip(
            [
                Segment(" " * left, self.rich_style),
                Segment(line, style),
                Segment(" " * (pad - left), self.rich_style),
            ],
            width,
        )


def _wrap(text: str, width: int) -> list[str]:
    """Break `text` into lines of at most `width` characters at spaces."""
    out: list[str] = []
    for paragraph in text.splitlines():
        line = ""
        for word in paragraph.split():
            while len(word) > width:
                if line:
                    out.append(line)
                    line = ""
                out.append(word[:width])
                word = word[width:]
            if not line:
                line = word
            elif len(line) + 1 + len(word) <= width:
                line = f"{line} {word}"
            else:
                out.append(line)
                line = word
        out.append(line)
    return out
