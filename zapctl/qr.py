"""QR codes in the terminal: half-block characters, quiet zone included.

Each character cell holds two modules stacked vertically (`▀` top dark, `▄` bottom dark,
`█` both, a space neither), so a code stays square-ish and small enough for an
80-column terminal. With `color` the code is painted black on white whatever the
terminal's theme (what a phone camera needs); without it the glyphs' ink is the dark
modules, which suits light backgrounds (`invert` suits dark ones).
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

QUIET_ZONE = 4  # modules of light border the QR specification asks for
GLYPHS = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}
_PAINT = "\x1b[30;107m"  # black ink on a bright white background
_RESET = "\x1b[0m"


def matrix(payload: str, *, border: int = QUIET_ZONE) -> list[list[bool]]:
    """Return the modules of `payload`'s QR code (True = dark), quiet zone included."""
    import qrcode
    from qrcode.constants import ERROR_CORRECT_M

    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=border)
    code.add_data(payload)
    code.make(fit=True)
    return [[bool(m) for m in row] for row in code.get_matrix()]


def render(payload: str, *, color: bool = False, invert: bool = False) -> str:
    """Draw `payload` as a QR code with half-block characters, one line per two rows."""
    rows = matrix(payload)
    if len(rows) % 2:
        rows.append([False] * len(rows[0]))  # one more light row of quiet zone
    lines = []
    for top, bottom in zip(rows[0::2], rows[1::2], strict=True):
        line = "".join(GLYPHS[(t != invert, b != invert)] for t, b in zip(top, bottom, strict=True))
        lines.append(f"{_PAINT}{line}{_RESET}" if color else line)
    return "\n".join(lines)


def use_color(stream: TextIO | None = None) -> bool:
    """Tell whether to paint codes in colour: on a terminal, unless NO_COLOR is set."""
    stream = stream or sys.stdout
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return stream.isatty()
