"""The one place zapctl writes results: human text, or one JSON document with --json."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
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
        sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
    else:
        sys.stdout.write(human.rstrip("\n") + "\n")


def notice(message: str) -> None:
    """Write a side remark to stderr (never pollutes --json output)."""
    sys.stderr.write(message.rstrip("\n") + "\n")
