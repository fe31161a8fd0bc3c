"""Option types shared by every zapctl command."""

from __future__ import annotations

import uuid
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

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


class RoleChoice(StrEnum):
    """A company role as typed on the command line."""

    admin = "admin"
    supervisor = "supervisor"
    agent = "agent"

    def to_role(self) -> Any:
        """Return the matching `shared.enums.Role`."""
        from shared.enums import Role

        return Role[self.value.upper()]


def as_uuid(value: str) -> uuid.UUID | None:
    """Return `value` as a UUID, or None when it is not one (then it is a name, e-mail...)."""
    try:
        return uuid.UUID(value.strip())
    except (ValueError, AttributeError):
        return None


CompanyOpt = Annotated[
    str | None,
    typer.Option(
        "--company",
        help="Company id or CNPJ (global admins only; company users always act on their own).",
    ),
]
YesOpt = Annotated[
    bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (needed without a TTY).")
]
QueryOpt = Annotated[
    str | None, typer.Option("--q", help="Only rows whose text contains this (case-insensitive).")
]
ActiveFilterOpt = Annotated[
    bool | None,
    typer.Option("--active/--inactive", help="Only active (or only inactive) rows."),
]
LimitOpt = Annotated[
    int, typer.Option("--limit", min=1, max=10_000, help="Show at most N, the newest.")
]
