"""What an IntegrityError says, the same way on SQLite and PostgreSQL.

Invariants:
- `classify` reads only the driver's structured fields (PostgreSQL's SQLSTATE, constraint,
  table and "Key (cols)=" detail; SQLite's extended error name and "UNIQUE constraint
  failed: t.a, t.b" text), never guesses from arbitrary text.
- The result names the table and the columns (values are left out: they may be personal
  data) so the API edge can answer one 409 for every uniqueness race, on every route.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.exc import IntegrityError

Kind = Literal["unique", "foreign_key"]

_PG_UNIQUE, _PG_FOREIGN_KEY = "23505", "23503"
_PG_KEY = re.compile(r"Key \(([^)]*)\)=")
_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (.+)$")


@dataclass(frozen=True)
class Violation:
    """A constraint a write broke."""

    kind: Kind
    table: str | None = None
    columns: tuple[str, ...] = ()
    constraint: str | None = None


def classify(exc: IntegrityError) -> Violation | None:
    """Return the unique or foreign-key violation behind `exc` (None: another kind)."""
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate is not None:
        cause = orig.__cause__ if orig is not None else None
        table = getattr(cause, "table_name", None)
        constraint = getattr(cause, "constraint_name", None)
        m = _PG_KEY.search(str(getattr(cause, "detail", None) or ""))
        columns = tuple(c.strip() for c in m.group(1).split(",")) if m else ()
        if sqlstate == _PG_UNIQUE:
            return Violation("unique", table, columns, constraint)
        if sqlstate == _PG_FOREIGN_KEY:
            return Violation("foreign_key", table, columns, constraint)
        return None
    name = getattr(orig, "sqlite_errorname", "")
    if name in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"):
        m = _SQLITE_UNIQUE.search(str(orig))
        qualified = [c.strip() for c in m.group(1).split(",")] if m else []
        table = qualified[0].split(".", 1)[0] if qualified else None
        columns = tuple(c.split(".", 1)[-1] for c in qualified)
        return Violation("unique", table, columns)
    if name == "SQLITE_CONSTRAINT_FOREIGNKEY":
        return Violation("foreign_key")
    return None
