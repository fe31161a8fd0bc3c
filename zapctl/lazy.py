"""A root command group that imports a command's module only when that command runs.

Typer turns every registered command into a click command before parsing anything, and
that means importing each module and reading the signature of every function in it: most
of a short command's start-up. `LazyGroup` keeps a table of `name -> (target, summary)`
instead, where the target is `"module:attribute"` (a `typer.Typer` for a noun with verbs,
or a command function); `zapctl company list` imports `zapctl.company` and nothing else.

Invariants:
- `zapctl --help` lists every command with its one-line summary from the table, without
  importing any command module; tests/zapctl/test_help.py checks each summary against
  the command's own help text so the two cannot drift apart.
- A command built here is built exactly as `app.add_typer` / `app.command` would build it
  (same markup mode and exception settings as the root), so help and parsing are unchanged.
"""

from __future__ import annotations

import importlib
from difflib import get_close_matches
from typing import Any, ClassVar

import typer
import typer.main
from typer._click.exceptions import UsageError
from typer.core import TyperGroup
from typer.models import CommandInfo, TyperInfo


class LazyCommand:
    """Where a command lives and its one-line summary (shown by `--help`)."""

    __slots__ = ("summary", "target")

    def __init__(self, target: str, summary: str) -> None:
        self.target = target
        self.summary = summary

    def load(self, name: str) -> Any:
        """Import the target and build its click command."""
        module_name, _, attr = self.target.partition(":")
        obj = getattr(importlib.import_module(module_name), attr)
        if isinstance(obj, typer.Typer):
            return typer.main.get_group_from_info(
                TyperInfo(obj, name=name),
                pretty_exceptions_short=True,
                rich_markup_mode=None,
                suggest_commands=True,
            )
        return typer.main.get_command_from_info(
            CommandInfo(name=name, callback=obj),
            pretty_exceptions_short=True,
            rich_markup_mode=None,
        )


class LazyGroup(TyperGroup):
    """The root group: eager commands as usual, plus the lazy table of `commands_table`."""

    commands_table: ClassVar[dict[str, LazyCommand]] = {}

    def list_commands(self, ctx: Any) -> list[str]:
        """Name the eager commands, then the lazy ones, in the order they were declared."""
        names = super().list_commands(ctx)
        return names + [n for n in self.commands_table if n not in names]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """Return a command, importing its module the first time it is asked for."""
        cmd = super().get_command(ctx, cmd_name)
        if cmd is None and cmd_name in self.commands_table:
            cmd = self.commands_table[cmd_name].load(cmd_name)
            self.commands[cmd_name] = cmd
        return cmd

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """List the commands with their summaries, importing none of them."""
        rows: list[tuple[str, str]] = []
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)
        for name in names:
            lazy = self.commands_table.get(name)
            if lazy is not None and name not in self.commands:
                rows.append((name, lazy.summary))
                continue
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        """Resolve the command; a typo gets "Did you mean" over lazy commands too."""
        try:
            return super().resolve_command(ctx, args)
        except UsageError as exc:
            if args and "Did you mean" not in exc.message:
                matches = get_close_matches(args[0], self.list_commands(ctx))
                if matches:
                    names = ", ".join(repr(m) for m in matches)
                    exc.message = f"{exc.message.rstrip('.')}. Did you mean {names}?"
            raise
