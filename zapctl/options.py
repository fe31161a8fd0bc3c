"""Option types shared by every zapctl command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

StateDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        help="zapd's state directory (default: $STATE_DIRECTORY or $XDG_STATE_HOME/zap).",
        envvar="ZAP_STATE_DIR",
        file_okay=False,
    ),
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL (default: SQLite in the state dir), e.g. postgresql://host/zap.",
        envvar="ZAP_DATABASE_URL",
    ),
]
