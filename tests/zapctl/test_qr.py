"""Terminal QR codes: the half-block drawing decodes back to the payload it was made from.

Two independent checks: the drawing parsed back into modules equals `qrcode`'s own
matrix for the payload, and a real QR decoder (zxing-cpp) reads the drawing rasterised.
"""

from __future__ import annotations

import re

import pytest
import qrcode
import zxingcpp
from qrcode.constants import ERROR_CORRECT_M

from zapctl import qr

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_MODULES = {" ": (False, False), "▀": (True, False), "▄": (False, True), "█": (True, True)}

# What WhatsApp Web puts in its QR codes: ref,publicKey,identityKey,advSecret (~240 chars).
WHATSAPP_LIKE = (
    "2@Gy8pqdS3ckhNfQYtmQHwY0Vp0Xn8dvOhcxCV1YQ3hnc0tRJCVFQBaoQzAjT3EfrjO0c1zSbm3Nlub8Jw"
    "Ft1b1BGW0tO4F3cxLeaw==,Qa2a8rtfFu6gx3ZQYmLUiVTbQ9TfHyZOgfBuCTA1SBk=,"
    "hm8nUMYlPwWUo2nJxNeOyflsD4EAZLkD6sxfC8wA6Ak=,1MJWM6X5jVKrBz4e2BxmF1sDS8XWg0OX2ZOm5xhrMSU="
)
PAYLOADS = [
    "zap-sandbox:01a202b1-e109-74b0-bfcd-e9d005546d66:BkA_2b1Riq_B7HdqtngpzQ",
    WHATSAPP_LIKE,
    "x",
    "Olá, atendimento — ação ✓",
]


def parse_drawing(text: str, *, invert: bool = False) -> list[list[bool]]:
    """Read a half-block drawing back into modules (True = dark); colour codes ignored."""
    lines = [_ANSI.sub("", line) for line in text.splitlines()]
    width = max(len(line) for line in lines)
    rows: list[list[bool]] = []
    for line in lines:
        cells = [_MODULES[ch] for ch in line.ljust(width)]
        rows.append([top != invert for top, _ in cells])
        rows.append([bottom != invert for _, bottom in cells])
    return rows


def reference_matrix(payload: str) -> list[list[bool]]:
    """Build the payload's modules with `qrcode` directly (4-module quiet zone)."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=4)
    code.add_data(payload)
    code.make(fit=True)
    return [[bool(m) for m in row] for row in code.get_matrix()]


def decode(modules: list[list[bool]], scale: int = 4) -> list[str]:
    """Rasterise modules (dark = black pixels) and read every QR code in the image."""
    rows = []
    for row in modules:
        line = bytes(0 if dark else 255 for dark in row for _ in range(scale))
        rows += [line] * scale
    image = memoryview(b"".join(rows)).cast("B", (len(rows), len(rows[0])))
    return [
        r.text for r in zxingcpp.read_barcodes(image) if r.format == zxingcpp.BarcodeFormat.QRCode
    ]


def same_modules(drawn: list[list[bool]], payload: str) -> bool:
    """Tell whether a parsed drawing is the payload's matrix (plus one light padding row)."""
    ref = reference_matrix(payload)
    if len(drawn) == len(ref) + 1:  # odd height: one more light row closes the last line
        assert not any(drawn[-1])
        drawn = drawn[:-1]
    return drawn == ref


@pytest.mark.parametrize("payload", PAYLOADS)
def test_drawing_is_qrcodes_matrix_and_decodes(payload: str) -> None:
    text = qr.render(payload)
    assert set(text) <= {" ", "▀", "▄", "█", "\n"}
    drawn = parse_drawing(text)
    assert same_modules(drawn, payload)
    assert decode(drawn) == [payload]
    # Two modules per character cell vertically, one horizontally.
    ref = reference_matrix(payload)
    assert len(text.splitlines()) == (len(ref) + 1) // 2
    assert {len(line) for line in text.splitlines()} == {len(ref)}


@pytest.mark.parametrize("payload", PAYLOADS[:2])
def test_quiet_zone_surrounds_the_code(payload: str) -> None:
    drawn = parse_drawing(qr.render(payload))
    size = len(drawn[0])
    for i in range(qr.QUIET_ZONE):
        assert not any(drawn[i]) and not any(drawn[-1 - i])
        assert not any(row[i] for row in drawn) and not any(row[size - 1 - i] for row in drawn)
    # The finder pattern starts right inside the quiet zone.
    assert drawn[qr.QUIET_ZONE][qr.QUIET_ZONE]


def test_colour_paints_black_on_white_and_still_decodes() -> None:
    payload = PAYLOADS[0]
    text = qr.render(payload, color=True)
    lines = text.splitlines()
    assert all(line.startswith("\x1b[30;107m") and line.endswith("\x1b[0m") for line in lines)
    drawn = parse_drawing(text)
    assert same_modules(drawn, payload)
    assert decode(drawn) == [payload]


def test_invert_swaps_ink_for_dark_terminals() -> None:
    payload = PAYLOADS[0]
    text = qr.render(payload, invert=True)
    assert text != qr.render(payload)
    # Read as a dark terminal shows it (ink = light), it is the same code.
    assert same_modules(parse_drawing(text, invert=True), payload)
    assert decode(parse_drawing(text, invert=True)) == [payload]


def test_a_whatsapp_sized_code_fits_an_80_column_terminal() -> None:
    lines = qr.render(WHATSAPP_LIKE).splitlines()
    assert max(len(line) for line in lines) <= 80
    assert len(lines) <= 40


def test_colour_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty:
        def isatty(self) -> bool:
            return True

    class Pipe:
        def isatty(self) -> bool:
            return False

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    assert qr.use_color(Tty())  # type: ignore[arg-type]
    assert not qr.use_color(Pipe())  # type: ignore[arg-type]
    monkeypatch.setenv("NO_COLOR", "1")
    assert not qr.use_color(Tty())  # type: ignore[arg-type]
