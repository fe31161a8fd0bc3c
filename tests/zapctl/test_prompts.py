"""Prompts: on the terminal (stderr), Ctrl+C exits 130 like any interrupted program,
end of input cancels with one line.

zapctl runs with a pseudo-terminal on stdin (so it prompts); Ctrl+C is the SIGINT the
terminal sends the foreground process.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import ZAPCTL, child_env, free_port, one_line


def _prompted(proc: subprocess.Popen[bytes], master: int, text: bytes, within: float) -> bytes:
    """Wait until the child's stderr shows `text`; return what it wrote so far."""
    assert proc.stderr is not None
    seen = b""
    deadline = time.monotonic() + within
    while text not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no prompt {text!r} in {seen!r}"
        ready, _, _ = select.select([proc.stderr], [], [], left)
        if ready:
            chunk = os.read(proc.stderr.fileno(), 4096)
            assert chunk, f"zapctl ended before prompting: {seen!r}"
            seen += chunk
    return seen


@pytest.mark.parametrize(
    ("args", "prompt", "typed"),
    [
        (["login"], b"E-mail: ", b""),
        (["login", "--email", "ana@acme.com.br"], b"Password: ", b""),
        (["login"], b"Password: ", b"ana@acme.com.br\n"),
    ],
)
def test_ctrl_c_at_a_prompt_exits_130(
    tmp_path: Path, args: list[str], prompt: bytes, typed: bytes
) -> None:
    env = child_env(tmp_path / "home", ZAP_SERVER=f"http://127.0.0.1:{free_port()}")
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [str(ZAPCTL), *args],
            env=env,
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            if typed:
                os.write(master, typed)
            seen = _prompted(proc, master, prompt, within=60)
            proc.send_signal(signal.SIGINT)  # what the terminal does on Ctrl+C
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    finally:
        os.close(slave)
        os.close(master)
    assert proc.returncode == 130, (seen, err)
    assert out == b""
    assert one_line(err.decode().strip()) == "zapctl: interrupted"
    assert b"Traceback" not in seen + err


def test_end_of_input_at_a_prompt_cancels(tmp_path: Path) -> None:
    env = child_env(tmp_path / "home", ZAP_SERVER=f"http://127.0.0.1:{free_port()}")
    master, slave = pty.openpty()
    try:
        os.write(master, b"\x04")  # Ctrl+D on an empty line: end of input
        proc = subprocess.run(
            [str(ZAPCTL), "login"],
            env=env,
            stdin=slave,
            capture_output=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(slave)
        os.close(master)
    assert proc.returncode == 1
    assert proc.stdout == b""
    assert proc.stderr.decode().strip().endswith("zapctl: cancelled (end of input)")
    assert b"Traceback" not in proc.stderr
