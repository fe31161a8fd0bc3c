"""One daemon per state, sockets before sessions: real `zapd` processes on loopback."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import (
    ZAPD,
    child_env,
    default_db_args,
    free_port,
    is_sqlite,
    one_line,
    run,
    running_zapd,
)
from zapd.startup import LOCK_FILENAME, StartupRefused, StateLock, bind_tcp, is_state_locked


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return child_env(tmp_path / "home")


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port some other program listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


def test_second_zapd_on_the_same_state_refuses(
    env: dict[str, str], tmp_path: Path, database_url: str
) -> None:
    state = tmp_path / "state"
    db_args, _ = default_db_args(database_url, state)
    with running_zapd(
        "--state-dir", str(state), *db_args, env=env, log_path=tmp_path / "a.log"
    ) as first:
        started = time.monotonic()
        code, out, err = run(
            ZAPD,
            "--state-dir",
            str(state),
            *db_args,
            "--port",
            str(free_port()),
            env=env,
            timeout=30,
        )
        assert code == 1 and out == ""
        assert one_line(err) == (
            f"zapd: another zapd (pid {first.proc.pid}) is already running on state dir "
            f"{state}; stop it first, or give this one another --state-dir"
        )
        assert err.count("\n") == 1  # that line and nothing else: no session, no worker started
        assert time.monotonic() - started < 20
        assert first.get("/readyz").status_code == 200  # the first one is untouched
        assert is_state_locked(state)
    # Once the first one stopped, the state is free again (the lock dies with its holder).
    assert not is_state_locked(state)
    with running_zapd("--state-dir", str(state), *db_args, env=env, log_path=tmp_path / "b.log"):
        pass


def test_port_in_use_refuses_before_starting_anything(
    env: dict[str, str], tmp_path: Path, database_url: str, busy_port: int
) -> None:
    state = tmp_path / "state"
    db_args, _ = default_db_args(database_url, state)
    code, out, err = run(
        ZAPD, "--state-dir", str(state), *db_args, "--port", str(busy_port), env=env, timeout=30
    )
    assert code == 1 and out == ""
    assert one_line(err) == (
        f"zapd: cannot listen on 127.0.0.1:{busy_port}: the port is already in use (another "
        "zapd or program); stop it, or choose another port with --port (or ZAP_PORT)"
    )
    assert err.count("\n") == 1 and "zapd ready" not in err and "Traceback" not in err
    # Refused before the lifespan: no database was created or migrated, no lock kept.
    if is_sqlite(database_url):
        assert not (state / "zap.db").exists()
    assert not is_state_locked(state)


def test_ready_is_sent_only_once_the_port_answers(env: dict[str, str], tmp_path: Path) -> None:
    notify_path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(notify_path))
        notify.settimeout(30)
        port = free_port()
        log_path = tmp_path / "zapd.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [str(ZAPD), "--state-dir", str(tmp_path / "state"), "--port", str(port)],
                env=dict(env, NOTIFY_SOCKET=str(notify_path)),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            while (msg := notify.recv(4096).decode()) != "READY=1":
                assert "READY" not in msg
            # At READY the socket serves, and the lifespan (sessions, workers) already ran.
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                pass
            text = log_path.read_text()
            assert "zapd ready" in text and "zapd listening on" in text
            assert text.index("zapd ready") < text.index("zapd listening on")
        finally:
            proc.terminate()
            assert proc.wait(20) == 0


def test_state_lock_in_process(tmp_path: Path) -> None:
    lock = StateLock(tmp_path).acquire()
    assert (tmp_path / LOCK_FILENAME).read_text().strip().isdigit()
    assert is_state_locked(tmp_path)
    # flock locks belong to the open file: a second open in the same process conflicts too.
    with pytest.raises(StartupRefused, match="already running on state dir"):
        StateLock(tmp_path).acquire()
    lock.release()
    assert not is_state_locked(tmp_path)
    StateLock(tmp_path).acquire().release()


def test_bind_tcp_refuses_a_busy_port_with_one_line(busy_port: int) -> None:
    with pytest.raises(StartupRefused, match="already in use"):
        bind_tcp("127.0.0.1", busy_port)
    with pytest.raises(StartupRefused, match="no such local address"):
        bind_tcp("203.0.113.7", free_port())
    (sock,) = bind_tcp("127.0.0.1", 0)
    with sock:
        assert sock.getsockname()[1] > 0
