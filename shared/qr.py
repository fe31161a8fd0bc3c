"""QR codes for terminals: the module matrix and its half-block drawing.

Shared by zapctl (printed codes) and zaptui (the QR widget), so both draw the same thing.

Invariants:
- `matrix` includes the quiet zone the QR specification asks for (`QUIET_ZONE` light
  modules on every side) and uses error correction level M.
- `half_blocks` puts two modules per character cell, stacked vertically (`▀` top dark,
  `▄` bottom dark, `█` both, a space neither); an odd number of rows gets one more light
  row, so a drawing of an N×N matrix is N columns by ⌈N/2⌉ lines. With `invert` the
  glyphs' ink is the light modules instead (for a light-on-dark terminal without colour).
"""

from __future__ import annotations

import qrcode
from qrcode.constants import ERROR_CORRECT_M

QUIET_ZONE = 4  # modules of light border the QR specification asks for
GLYPHS: dict[tuple[bool, bool], str] = {
    (False, False): " ",
    (True, False): "▀",
    (False, True): "▄",
    (True, True): "█",
}


def matrix(payload: str, *, border: int = QUIET_ZONE) -> list[list[bool]]:
    """Return the modules of `payload`'s QR code (True = dark), quiet zone included."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=border)
    code.add_data(payload)
    code.make(fit=True)
    return [[bool(m) for m in row] for row in code.get_matrix()]


def half_blocks(rows: list[list[bool]], *, invert: bool = False) -> list[str]:
    """Draw modules as half-block lines, one line per two rows of modules."""
    if not rows:
        return []
    if len(rows) % 2:
        rows = [*rows, [False] * len(rows[0])]  # one more light row of quiet zone
    return [
        "".join(GLYPHS[(t != invert, b != invert)] for t, b in zip(top, bottom, strict=True))
        for top, bottom in zip(rows[0::2], rows[1::2], strict=True)
    ]


def drawing_size(payload: str) -> tuple[int, int]:
    """Return (columns, lines) the half-block drawing of `payload` takes."""
    size = len(matrix(payload))
    return size, (size + 1) // 2
