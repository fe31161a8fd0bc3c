"""`zapctl demo`: the README's first command, end to end (short run)."""

from __future__ import annotations

import re
import socket
from pathlib import Path

from tests.helpers import child_env, free_port, one_line, run_cli


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


def test_demo_with_its_port_busy_says_so_and_how_to_pick_another(tmp_path: Path) -> None:
    env = child_env(tmp_path / "home")
    state = tmp_path / "demo"
    with socket.socket() as other:  # another program (or another zapd) on the port
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        res = run_cli("demo", "--state-dir", str(state), "--port", str(port), env=env, timeout=60)
    assert res.code == 1 and res.out == ""
    assert one_line(res.err) == (
        f"zapctl: port {port} on 127.0.0.1 is already in use (another zapd or program); "
        f"pick another with --port, e.g. `zapctl demo --port {port + 1}` "
        f"(or `./dev demo --port {port + 1}`)"
    )
    assert not state.exists()  # refused before touching anything
