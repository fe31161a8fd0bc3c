"""Helpers for tests that run the real console scripts (`zapctl`, `zapd`) as subprocesses.

Every child gets an environment built from ours minus ZAP_* and the XDG/systemd
directory variables, with HOME pointing into the test's temp dir, so a developer's
own config or state can never leak into (or be touched by) a test.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import httpx

BIN_DIR = Path(sys.executable).parent
ZAPCTL = BIN_DIR / "zapctl"
ZAPD = BIN_DIR / "zapd"

CLI_TIMEOUT = 60.0
START_TIMEOUT = float(os.environ.get("ZAP_TEST_START_TIMEOUT", "60"))  # a wait, not a bound
STOP_TIMEOUT = 15.0

# SIGTERM is zapd's normal stop (systemd): it must shut down gracefully and exit 0, not
# die by the signal (uvicorn re-raises a captured SIGTERM unless zapd handles it).
GRACEFUL_EXIT_CODES = (0,)

_DROPPED_VARS = (
    "STATE_DIRECTORY",
    "CONFIGURATION_DIRECTORY",
    "XDG_STATE_HOME",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_CACHE_HOME",
    "XDG_RUNTIME_DIR",
    "COLUMNS",  # tables fit COLUMNS when set: children print uncut unless a test sets it
    "LINES",
)


def child_env(home: Path, **extra: str) -> dict[str, str]:
    """Return os.environ minus ZAP_*/XDG/systemd dirs, with HOME=`home` and `extra` set."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("ZAP_") and k not in _DROPPED_VARS
    }
    home.mkdir(parents=True, exist_ok=True)
    env["HOME"] = str(home)
    env.update(extra)
    return env


class CliResult(NamedTuple):
    """What a finished command did: unpacks as (code, stdout, stderr)."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        """Parse stdout as exactly one JSON document on one line."""
        assert self.out.endswith("\n") and self.out.count("\n") == 1, repr(self.out)
        return json.loads(self.out)


def run(
    program: Path,
    *args: str,
    env: Mapping[str, str],
    timeout: float = CLI_TIMEOUT,
    input: str | None = None,
) -> CliResult:
    """Run a program to completion (stdin is /dev/null unless `input` is given)."""
    proc = subprocess.run(
        [str(program), *args],
        env=dict(env),
        input=input,
        stdin=subprocess.DEVNULL if input is None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def run_cli(*args: str, env: Mapping[str, str], timeout: float = CLI_TIMEOUT) -> CliResult:
    """Run `zapctl ARGS...`."""
    return run(ZAPCTL, *args, env=env, timeout=timeout)


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def one_line(text: str) -> str:
    """Assert `text` is a single non-empty line with no traceback, and return it."""
    assert "Traceback" not in text, text
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def default_db_args(database_url: str, state_dir: Path) -> tuple[list[str], str]:
    """Return the CLI args that select the test database, and the URL to inspect it with.

    On SQLite no --db is passed, so the default (state_dir/zap.db) is what gets tested;
    on PostgreSQL the fixture's fresh database is passed with --db.
    """
    if is_sqlite(database_url):
        return [], f"sqlite+aiosqlite:///{state_dir / 'zap.db'}"
    return ["--db", database_url], database_url


async def _users(url: str) -> list[Any]:
    from sqlalchemy import select

    from zapd.db.engine import create_engine, session_factory
    from zapd.db.models import User

    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            return list((await session.scalars(select(User).order_by(User.email))).all())
    finally:
        await engine.dispose()


def fetch_users(url: str) -> list[Any]:
    """Return every `User` (detached, all columns loaded), read directly from the database."""
    result: list[Any] = asyncio.run(_users(url))
    return result


async def _revision(url: str) -> str | None:
    from zapd.db import migrate
    from zapd.db.engine import create_engine

    engine = create_engine(url)
    try:
        return (await migrate.status(engine)).current
    finally:
        await engine.dispose()


def schema_revision(url: str) -> str | None:
    """Return the database's Alembic revision (None for an empty database)."""
    result: str | None = asyncio.run(_revision(url))
    return result


def head_revision() -> str:
    from zapd.db.migrate import head_revision as head

    return head()


@dataclass
class Zapd:
    """A zapd child process and how to reach it."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    returncode: int | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.get(self.base_url + path, timeout=10, **kw)

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return httpx.request(method, self.base_url + path, timeout=10, **kw)

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"zapd exited with {self.proc.returncode} before serving:\n{self.log()}"
                )
            try:
                if httpx.get(self.base_url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"zapd did not answer /healthz within {timeout}s:\n{self.log()}")

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM the process; fail unless it shuts down gracefully within `timeout`."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(
                    f"zapd ignored SIGTERM for {timeout}s:\n{self.log()}"
                ) from None
        self.returncode = self.proc.returncode
        return self.returncode


@contextmanager
def running_zapd(
    *args: str,
    env: Mapping[str, str],
    log_path: Path,
    port: int | None = None,
    check_exit: bool = True,
) -> Iterator[Zapd]:
    """Start `zapd --port P ARGS...` on loopback, wait for /healthz, SIGTERM it on exit.

    With `port=None` a free port is picked and passed as --port; with a port given,
    no --port flag is added (the caller configures it, e.g. through ZAP_PORT).
    """
    argv = [str(ZAPD), *args]
    if port is None:
        port = free_port()
        argv += ["--port", str(port)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            argv, env=dict(env), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    zapd = Zapd(proc=proc, port=port, log_path=log_path)
    try:
        zapd.wait_healthy()
        yield zapd
    except BaseException:
        if proc.poll() is None:  # the test already failed: just make sure zapd is gone
            proc.kill()
            proc.wait()
        raise
    if proc.poll() is None:
        code = zapd.stop()
        if check_exit:
            log_text = zapd.log()
            assert code in GRACEFUL_EXIT_CODES, f"zapd exited with {code}:\n{log_text}"
            assert "zapd stopped" in log_text, log_text
            # The lines with a traceback first: a long log is cut when reported.
            tracebacks = [line for line in log_text.splitlines() if "Traceback" in line]
            assert not tracebacks, "\n".join([*tracebacks, "--- whole log:", log_text])
