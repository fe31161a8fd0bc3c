"""`zapctl demo`: the README's first command, end to end (short run)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers import child_env, free_port, run_cli


def test_demo_runs_seeds_and_shows_traffic(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = child_env(home)
    state = tmp_path / "demo"
    port = str(free_port())
    args = ["demo", "--state-dir", str(state), "--port", port, "--interval", "0.2"]
    first = run_cli(*args, "--duration", "5", env=env, timeout=90)
    assert first.code == 0, first.err
    out = first.out
    assert "SANDBOX" in out and "ana@demo.zap.br" in out and "zapdemo123" in out
    assert "Laboratório, Comercial, Financeiro, Administrativo" in out
    assert "← [cliente]" in out  # customers wrote
    assert "→ [menu] Olá" in out  # and got the greeting menu
    assert re.search(r"ticket #\d+ novo", out)
    assert "Traceback" not in first.err + out
    assert (state / "zap.db").exists()
    # Running it again reuses the same company, people and session.
    again = run_cli(*args, "--duration", "2", env=env, timeout=90)
    assert again.code == 0, again.err
    assert "Traceback" not in again.err + again.out
