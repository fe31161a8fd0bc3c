"""`zapctl demo`: the README's first command, end to end (short run)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import select
import signal
import socket
import struct
import subprocess
import termios
import time
from pathlib import Path

import pytest

from tests.helpers import ZAPCTL, child_env, free_port, one_line, run_cli


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


def _read_until(fd: int, wanted: list[str], within: float) -> str:
    """Read a pty until every string in `wanted` was seen (escape codes stripped)."""
    seen = b""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
            text = re.sub(r"\x1b\[[0-9;?]*[ -/]*[@-~]", "", seen.decode("utf-8", "replace"))
            if all(w in text for w in wanted):
                return text
    text = re.sub(r"\x1b\[[0-9;?]*[ -/]*[@-~]", "", seen.decode("utf-8", "replace"))
    raise AssertionError(f"never saw {wanted!r} in: {text[-2000:]!r}")


def _drain_until_exit(fd: int, proc: subprocess.Popen[bytes], within: float) -> int:
    """Keep reading the pty, as a terminal does, until `proc` exits; its exit code.

    A terminal nobody reads fills up (a few KiB): zaptui's last frames and the demo's
    closing lines would then block in write() and the process never exit.
    """
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            return code
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            with contextlib.suppress(OSError):  # the other side closed: it is going
                os.read(fd, 65536)
    raise AssertionError(f"the demo did not exit within {within} s of quitting zaptui")


def test_demo_on_a_terminal_opens_zaptui_logged_in(tmp_path: Path) -> None:
    """On a terminal the demo opens zaptui as an agent; quitting it stops the demo."""
    env = child_env(
        tmp_path / "home",
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
        TERM="xterm-256color",
        COLUMNS="120",
        LINES="36",
    )
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 36, 120, 0, 0))
    port = str(free_port())
    args = ["demo", "--state-dir", str(tmp_path / "demo"), "--port", port, "--interval", "0.3"]
    proc = subprocess.Popen([str(ZAPCTL), *args], env=env, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    try:
        # The credentials are printed, then the agent UI shows the agent's queues.
        _read_until(master, ["ana@demo.zap.br", "zapdemo123"], within=180)
        _read_until(master, ["Ana Atendente", "Laboratório"], within=180)
        os.write(master, b"\x11")  # Ctrl+Q quits zaptui, and with it the demo
        assert _drain_until_exit(master, proc, within=120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        os.close(master)


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


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGKILL], ids=["hangup", "killed"])
def test_the_demo_takes_its_daemon_with_it_however_it_ends(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """A closed terminal (SIGHUP) stops the demo cleanly; SIGKILL still takes zapd along.

    Either way no daemon is left holding the port for the next `zapctl demo`.
    """
    env = child_env(tmp_path / "home")
    port = free_port()
    args = ["demo", "--state-dir", str(tmp_path / "demo"), "--port", str(port), "--no-tui"]
    proc = subprocess.Popen(
        [str(ZAPCTL), *args, "--interval", "0.5"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert proc.stdout is not None
        seen = b""
        deadline = time.monotonic() + 120
        while b"running on" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                seen += chunk
        assert b"running on" in seen, seen.decode(errors="replace")[-2000:]
        assert _port_open(port)  # zapd serves the demo
        proc.send_signal(sig)
        rest, _ = proc.communicate(timeout=60)
        if sig == signal.SIGHUP:
            assert proc.returncode == 0 and b"zap demo stopped" in rest, rest[-2000:]
            assert b"Traceback" not in seen + rest
        deadline = time.monotonic() + 30
        while _port_open(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _port_open(port), "zapd outlived the demo"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
