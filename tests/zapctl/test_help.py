"""Every zapctl command documents itself with a summary and examples of its own use."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer.main

from zapctl.main import app


def _commands() -> list[tuple[str, Any]]:
    root: Any = typer.main.get_command(app)
    found: list[tuple[str, Any]] = []
    for name, cmd in root.commands.items():
        if hasattr(cmd, "commands"):  # a noun: its verbs
            found += [(f"{name} {sub}", c) for sub, c in cmd.commands.items()]
        else:
            found.append((name, cmd))
    return found


@pytest.mark.parametrize(("path", "cmd"), [pytest.param(p, c, id=p) for p, c in _commands()])
def test_every_command_has_examples_of_itself(path: str, cmd: Any) -> None:
    text = cmd.get_help(cmd.context_class(cmd, info_name=f"zapctl {path}"))
    summary = text.split("\n\n", 2)[1].strip()
    assert summary and not summary.startswith(("Options", "Arguments")), text
    assert "Example" in text, text
    examples = text.split("Example", 1)[1]
    # Global options (--json, --server URL) may stand before the noun.
    assert re.search(rf"zapctl (--\S+ (\S+ )?)*{re.escape(path)}\b", examples), text
