"""QR codes in the terminal: half-block characters, quiet zone included.

The matrix and the half-block drawing live in `shared.qr` (zaptui draws the same codes).

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

from shared.qr import GLYPHS, QUIET_ZONE, half_blocks, matrix

__all__ = ["GLYPHS", "QUIET_ZONE", "matrix", "render", "use_color"]

_PAINT = "\x1b[30;107m"  # black ink on a bright white background
_RESET = "\x1b[0m"


def render(payload: str, *, color: bool = False, invert: bool = False) -> str:
    """Draw `payload` as a QR code with half-block characters, one line per two rows."""
    lines = half_blocks(matrix(payload), invert=invert)
    return "\n".join(f"{_PAINT}{line}{_RESET}" if color else line for line in lines)


def use_color(stream: TextIO | None = None) -> bool:
    """Tell whether to paint codes in colour: on a terminal, unless NO_COLOR is set."""
    stream = stream or sys.stdout
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return stream.isatty()
