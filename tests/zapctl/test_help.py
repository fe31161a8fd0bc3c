"""Every zapctl command documents itself with a summary and examples of its own use."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main

from zapctl.main import _Root, app


def _root() -> Any:
    root: Any = typer.main.get_command(app)
    return root, root.context_class(root, info_name="zapctl")


def _commands() -> list[tuple[str, Any]]:
    root, ctx = _root()
    found: list[tuple[str, Any]] = []
    for name in root.list_commands(ctx):
        cmd = root.get_command(ctx, name)  # lazy: imports the command's module
        if hasattr(cmd, "commands"):  # a noun: its verbs
            found += [(f"{name} {sub}", c) for sub, c in cmd.commands.items()]
        else:
            found.append((name, cmd))
    return found


@pytest.mark.parametrize("name", list(_Root.commands_table))
def test_root_help_summary_is_the_commands_own(name: str) -> None:
    # `zapctl --help` lists summaries from the lazy table without importing the modules;
    # each must be what the command itself says, so the two never drift apart.
    root, ctx = _root()
    assert _Root.commands_table[name].summary == root.get_command(ctx, name).get_short_help_str(
        10_000
    )


def test_root_help_imports_no_command_module() -> None:
    code = (
        "import sys\n"
        "from zapctl.main import main\n"
        "sys.argv = ['zapctl', '--help']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('zapctl.', 'shared.', 'httpx')))\n"
        "sys.stderr.write(repr(loaded))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert "Commands:" in proc.stdout and "company" in proc.stdout, proc.stdout
    loaded = ast.literal_eval(proc.stderr.strip())
    assert loaded == ["zapctl.errors", "zapctl.lazy", "zapctl.main", "zapctl.output"], loaded


def test_a_typo_suggests_a_lazy_command() -> None:
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "zapctl"), "compnay", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "Did you mean 'company'?" in proc.stderr


@pytest.mark.parametrize(("path", "cmd"), [pytest.param(p, c, id=p) for p, c in _commands()])
def test_every_command_has_examples_of_itself(path: str, cmd: Any) -> None:
    text = cmd.get_help(cmd.context_class(cmd, info_name=f"zapctl {path}"))
    summary = text.split("\n\n", 2)[1].strip()
    assert summary and not summary.startswith(("Options", "Arguments")), text
    assert "Example" in text, text
    examples = text.split("Example", 1)[1]
    # Global options (--json, --server URL) may stand before the noun.
    assert re.search(rf"zapctl (--\S+ (\S+ )?)*{re.escape(path)}\b", examples), text
