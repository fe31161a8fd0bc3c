"""The QR widget: what reaches the terminal decodes, on dark and light themes alike.

The screen's final cells (the compositor's strips, what a terminal is sent) are
rasterised glyph by glyph with their real colours — `▀` paints its top half in the
foreground colour and its bottom half in the background colour, and so on — and the
image is read by a real QR decoder (zxing-cpp).
"""

from __future__ import annotations

import pytest
import zxingcpp
from rich.color import Color
from textual.app import App, ComposeResult
from textual.geometry import Region

from shared.qr import QUIET_ZONE, matrix
from zaptui.i18n import set_language
from zaptui.widgets.qr import INK, PAPER, QRCode

WHATSAPP_LIKE = (
    "2@Gy8pqdS3ckhNfQYtmQHwY0Vp0Xn8dvOhcxCV1YQ3hnc0tRJCVFQBaoQzAjT3EfrjO0c1zSbm3Nlub8Jw"
    "Ft1b1BGW0tO4F3cxLeaw==,Qa2a8rtfFu6gx3ZQYmLUiVTbQ9TfHyZOgfBuCTA1SBk=,"
    "hm8nUMYlPwWUo2nJxNeOyflsD4EAZLkD6sxfC8wA6Ak=,1MJWM6X5jVKrBz4e2BxmF1sDS8XWg0OX2ZOm5xhrMSU="
)
SANDBOX_LIKE = "zap-sandbox:01a202b1-e109-74b0-bfcd-e9d005546d66:BkA_2b1Riq_B7HdqtngpzQ"
TOP = {"▀", "█"}
BOTTOM = {"▄", "█"}
DEFAULT_BG = (0, 0, 0)  # a cell without a colour: assume a dark terminal
DEFAULT_FG = (255, 255, 255)


def _rgb(color: Color | None, default: tuple[int, int, int]) -> tuple[int, int, int]:
    if color is None or color.is_default:
        return default
    c = color.get_truecolor()
    return (c.red, c.green, c.blue)


def screen_cells(app: App[object], region: Region) -> list[list[tuple[str, tuple, tuple]]]:
    """The cells of `region` as the terminal gets them: (glyph, fg rgb, bg rgb)."""
    strips = app.screen._compositor.render_strips()
    rows = []
    for y in range(region.y, region.bottom):
        cells = []
        for text, style, _ in strips[y].crop(region.x, region.right):
            fg = _rgb(style.color if style else None, DEFAULT_FG)
            bg = _rgb(style.bgcolor if style else None, DEFAULT_BG)
            if style is not None and style.reverse:
                fg, bg = bg, fg
            cells.extend((ch, fg, bg) for ch in text)
        rows.append(cells)
    return rows


def rasterise(cells: list[list[tuple[str, tuple, tuple]]]) -> list[list[bool]]:
    """Two pixels per cell vertically, True where the pixel is dark."""

    def dark(rgb: tuple[int, int, int]) -> bool:
        r, g, b = rgb
        return 0.299 * r + 0.587 * g + 0.114 * b < 128

    pixels: list[list[bool]] = []
    for row in cells:
        pixels.append([dark(fg if ch in TOP else bg) for ch, fg, bg in row])
        pixels.append([dark(fg if ch in BOTTOM else bg) for ch, fg, bg in row])
    return pixels


def decode(pixels: list[list[bool]], scale: int = 4) -> list[str]:
    """Read every QR code in a dark/light pixel grid."""
    if not pixels or not pixels[0]:
        return []  # nothing on screen (a hidden widget)
    lines = []
    for row in pixels:
        line = bytes(0 if d else 255 for d in row for _ in range(scale))
        lines += [line] * scale
    image = memoryview(b"".join(lines)).cast("B", (len(lines), len(lines[0])))
    return [
        r.text for r in zxingcpp.read_barcodes(image) if r.format == zxingcpp.BarcodeFormat.QRCode
    ]


def read_qr(app: App[object], widget: QRCode) -> list[str]:
    """Decode what the terminal shows of `widget`."""
    return decode(rasterise(screen_cells(app, widget.region)))


def drawing_cells(app: App[object], widget: QRCode) -> list[list[tuple[str, tuple, tuple]]]:
    """Only the cells of the code itself (quiet zone included), centred in the widget."""
    need = widget.needed
    region = widget.content_region
    x = region.x + (region.width - need.width) // 2
    y = region.y + (region.height - need.height) // 2
    return screen_cells(app, Region(x, y, need.width, need.height))


class QRApp(App[None]):
    def __init__(self, payload: str | None, theme: str = "textual-dark") -> None:
        super().__init__()
        self.payload = payload
        self.theme = theme

    def compose(self) -> ComposeResult:
        yield QRCode(self.payload)


@pytest.mark.parametrize("theme", ["textual-dark", "textual-light"])
@pytest.mark.parametrize("payload", [SANDBOX_LIKE, WHATSAPP_LIKE])
async def test_the_terminal_shows_a_code_that_decodes(payload: str, theme: str) -> None:
    app = QRApp(payload, theme)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        widget = app.query_one(QRCode)
        assert widget.fits and widget.message() is None
        assert read_qr(app, widget) == [payload]
        # Every cell of the drawing is black ink on white paper, whatever the theme.
        ink, paper = Color.parse(INK).get_truecolor(), Color.parse(PAPER).get_truecolor()
        cells = drawing_cells(app, widget)
        assert {(fg, bg) for row in cells for _, fg, bg in row} == {(tuple(ink), tuple(paper))}
        # The quiet zone: the outer QUIET_ZONE modules are light all around.
        modules = rasterise(cells)[: len(matrix(payload))]
        size = len(modules)
        for i in range(QUIET_ZONE):
            assert not any(modules[i]) and not any(modules[size - 1 - i])
            assert not any(r[i] or r[size - 1 - i] for r in modules)
        assert modules == matrix(payload)


async def test_too_small_says_so_instead_of_a_clipped_code() -> None:
    app = QRApp(WHATSAPP_LIKE)
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        widget = app.query_one(QRCode)
        need = widget.needed
        assert not widget.fits
        text = "\n".join(
            "".join(ch for ch, _, _ in row) for row in screen_cells(app, widget.region)
        )
        assert "pequeno demais" in text
        assert f"{need.width}×{need.height}" in text and "60×20" in text
        assert not set(text) & {"▀", "▄", "█"}  # nothing of the code is drawn
        assert read_qr(app, widget) == []
        # Growing the terminal brings the code back.
        await pilot.resize_terminal(100, 40)
        await pilot.pause()
        assert widget.fits
        assert read_qr(app, widget) == [WHATSAPP_LIKE]


async def test_a_new_payload_redraws_and_none_clears() -> None:
    app = QRApp(SANDBOX_LIKE)
    async with app.run_test(size=(80, 30)) as pilot:
        await pilot.pause()
        widget = app.query_one(QRCode)
        assert read_qr(app, widget) == [SANDBOX_LIKE]
        rotated = SANDBOX_LIKE[:-4] + "ZZZZ"
        widget.payload = rotated
        await pilot.pause()
        assert read_qr(app, widget) == [rotated]
        widget.payload = None
        await pilot.pause()
        assert widget.lines == [] and widget.message() is None
        assert read_qr(app, widget) == []


async def test_the_message_speaks_the_language_chosen() -> None:
    app = QRApp(WHATSAPP_LIKE)
    set_language("en")
    try:
        async with app.run_test(size=(60, 20)) as pilot:
            await pilot.pause()
            message = app.query_one(QRCode).message()
            assert message is not None and message.startswith("Terminal too small for the QR code")
    finally:
        set_language("pt_BR")
