"""Option types shared by every zapctl command.

Enum options take the members of `shared.enums` themselves (no copies here): typed by
name, case-insensitively, `-` and `_` alike (`--status pending`, `PENDING`,
`--auto-assign round-robin`); the API's integer value is accepted too, for scripts.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

E = TypeVar("E", bound=IntEnum)


def choices(enum: type[IntEnum]) -> str:
    """Spell the members of `enum` as typed on the command line: `pending|open|closed`."""
    return "|".join(m.name.lower() for m in enum)


def by_name(enum: type[E]) -> Callable[[Any], E]:
    """Return a parser of `enum` members by name (any case, `-` for `_`) or by value."""

    def parse(value: Any) -> E:
        if isinstance(value, enum):
            return value
        text = str(value).strip()
        key = text.upper().replace("-", "_")
        if key in enum.__members__:
            return enum[key]
        if text.lstrip("-").isdigit():
            try:
                return enum(int(text))
            except ValueError:
                pass
        raise typer.BadParameter(f"{text!r} is not one of {choices(enum).replace('|', ', ')}")

    return parse


def enum_option(enum: type[IntEnum], *decls: str, help: str, default: IntEnum | None = None) -> Any:
    """Build a `typer.Option` taking a member of `enum` by name (see the module docstring)."""
    return typer.Option(
        *decls,
        help=help,
        parser=by_name(enum),
        metavar=f"[{choices(enum)}]",
        show_default=default.name.lower() if default is not None else False,
    )


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
        help="Company name, id or CNPJ (global admins only; company users always act on "
        "their own).",
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
