"""The one place zapctl writes results: human text, or one JSON document with --json.

Invariants:
- `--json` output names enum members (`"status": "PENDING"`), while the API keeps the
  spec's integers; the conversion happens here, once, for every command (`plain`).
- Tables fit the terminal: on a terminal (or with COLUMNS set) the widest non-key
  columns are narrowed and their cells cut with "…"; the key columns (the first one and
  the id) keep their full width. Piped output is never cut (scripts use --json anyway).
- A listing whose rows belong to several companies shows each row's company.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import Enum
from typing import Any

import typer


@dataclass
class CliState:
    """Global options, set by the root callback and read by every command."""

    server: str | None = None
    json: bool = False


def state(ctx: typer.Context) -> CliState:
    """Return the global options of this invocation."""
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj


def emit(ctx: typer.Context, data: Any, human: str) -> None:
    """Print `data` as JSON under --json, else the human text."""
    if state(ctx).json:
        sys.stdout.write(json.dumps(plain(data), ensure_ascii=False, default=str) + "\n")
    else:
        sys.stdout.write(human.rstrip("\n") + "\n")


def notice(message: str) -> None:
    """Write a side remark to stderr (never pollutes --json output)."""
    sys.stderr.write(message.rstrip("\n") + "\n")


ELLIPSIS = "…"
KEY_COLUMNS = frozenset({"id", "number"})
MIN_COLUMN = 4  # a narrowed column keeps at least this much ("ab…")


def terminal_width() -> int | None:
    """Return the width tables must fit: COLUMNS, else the terminal's; None when piped."""
    env = os.environ.get("COLUMNS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def table(
    rows: list[dict[str, Any]],
    columns: list[tuple[str, str]] | list[str],
    *,
    width: int | None = -1,
    keys: Sequence[str] = (),
) -> str:
    """Render `rows` as an aligned plain-text table with a header line.

    `columns` lists the keys to show, either as bare keys (the header is the key upper-cased)
    or as `(key, header)` pairs. Missing values and None print as "-", booleans as yes/no,
    lists joined with ", ". Returns "(none)" when there are no rows. The table fits
    `width` (default: the terminal's, see `terminal_width`; None: never cut), keeping the
    first column, "id", "number" and `keys` whole. Example:

        table([{"id": "1", "name": "Acme"}], [("id", "ID"), ("name", "NAME")])
    """
    cols = [(c, c.upper()) if isinstance(c, str) else c for c in columns]
    if not rows:
        return "(none)"

    grid = [[header for _, header in cols]]
    grid += [[_cell(row.get(key)) for key, _ in cols] for row in rows]
    widths = [max(len(line[i]) for line in grid) for i in range(len(cols))]
    limit = terminal_width() if width == -1 else width
    if limit is not None:
        fixed = {0} | {i for i, (key, _) in enumerate(cols) if key in KEY_COLUMNS or key in keys}
        widths = _fit(widths, fixed, limit)
    lines = [
        "  ".join(_clip(v, w).ljust(w) for v, w in zip(line, widths, strict=True)).rstrip()
        for line in grid
    ]
    return "\n".join(lines)


def _fit(widths: list[int], fixed: set[int], limit: int) -> list[int]:
    """Narrow the widest non-key columns, one character at a time, until the row fits."""
    widths = list(widths)
    total = sum(widths) + 2 * (len(widths) - 1)
    while total > limit:
        narrowable = [i for i in range(len(widths)) if i not in fixed and widths[i] > MIN_COLUMN]
        if not narrowable:
            break
        widest = max(narrowable, key=lambda i: widths[i])
        widths[widest] -= 1
        total -= 1
    return widths


def _clip(value: str, width: int) -> str:
    return value if len(value) <= width else value[: max(width - 1, 0)] + ELLIPSIS


def by_company(
    rows: list[dict[str, Any]],
    models: Sequence[Any],
    columns: list[tuple[str, str]] | list[str],
    names: Mapping[Any, str],
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Add a COMPANY column (after the first) when `names` is given: a listing that mixes
    companies says whose each row is. `names` maps company ids to names (empty: one company).
    """
    cols = [(c, c.upper()) if isinstance(c, str) else c for c in columns]
    if not names:
        return rows, cols
    for row, model in zip(rows, models, strict=True):
        cid = getattr(model, "company_id", None)
        row["company"] = names.get(cid, str(cid) if cid else "(global)")
    return rows, [cols[0], ("company", "COMPANY"), *cols[1:]]


def details(pairs: list[tuple[str, Any]]) -> str:
    """Render `(label, value)` pairs as aligned "label: value" lines (for `show` commands)."""
    if not pairs:
        return ""
    width = max(len(label) for label, _ in pairs) + 1
    return "\n".join(f"{(label + ':').ljust(width)} {_cell(value)}" for label, value in pairs)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(_cell(v) for v in value) or "-"
    return str(value).replace("\n", " ")


def plain(value: Any) -> Any:
    """Turn data into JSON-ready values: enum members by name, ids and times as text."""
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, dict):
        return {str(plain(k)): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def dump(value: Any) -> Any:
    """Turn a pydantic model (or a list of them) into plain JSON-ready data (enums by name)."""
    if isinstance(value, list | tuple):
        return [dump(v) for v in value]
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):
        return plain(model_dump(mode="python"))
    return plain(value)


def confirm(question: str, yes: bool) -> None:
    """Ask `question` on a terminal unless `yes`; refuse (exit 2) with no terminal to ask on."""
    from zapctl.errors import CliError, ExitCode

    if yes:
        return
    if not sys.stdin.isatty():
        raise CliError("refusing without confirmation: pass --yes (no terminal)", ExitCode.USAGE)
    # Not typer.confirm: click echoes part of its prompt on stdout, which must stay clean.
    sys.stderr.write(f"{question} [y/N]: ")
    sys.stderr.flush()
    try:
        answer = sys.stdin.readline().strip().lower()
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        raise CliError("interrupted", ExitCode.INTERRUPTED) from None
    if answer not in ("y", "yes", "s", "sim"):
        raise CliError("cancelled", ExitCode.ERROR)


def ask(question: str, *, secret: bool = False, twice: bool = False) -> str:
    """Prompt on the terminal and return a non-empty answer.

    The prompt goes to stderr (stdout stays for results); a secret is read without echo;
    `twice` asks again to confirm. Ctrl+C ends zapctl with "interrupted" and exit 130,
    like any interrupted program; end of input cancels (exit 1).
    """
    import getpass

    from zapctl.errors import CliError, ExitCode

    def read(prompt: str) -> str:
        try:
            if secret:
                return getpass.getpass(prompt, stream=sys.stderr)
            sys.stderr.write(prompt)
            sys.stderr.flush()
            line = sys.stdin.readline()
        except EOFError:
            line = ""
        if not line:
            sys.stderr.write("\n")
            raise CliError("cancelled (end of input)", ExitCode.ERROR)
        return line.rstrip("\r\n")

    try:
        while True:
            answer = read(f"{question}: ")
            if not answer.strip():
                continue
            if twice and read(f"{question} (again): ") != answer:
                sys.stderr.write("the two entries differ; try again\n")
                continue
            return answer
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        raise CliError("interrupted", ExitCode.INTERRUPTED) from None


def when(value: datetime | None) -> str | None:
    """Format a timestamp in local time for people (None stays None)."""
    if value is None:
        return None
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")
