"""A real `zapd` process stops gracefully on SIGTERM and tells systemd when it is ready.

Graceful means: an HTTP request already in flight is answered, an open WebSocket gets a
close frame (not a dropped TCP connection), the lifespan closes the database, and the
process exits 0 — well within systemd's stop timeout.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.helpers import (
    ZAPD,
    child_env,
    default_db_args,
    free_port,
    run_cli,
    running_zapd,
)

ADMIN = {"email": "admin@example.com", "password": "Cedro-azul-no-quintal"}
EXIT_TIMEOUT = 15.0


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return child_env(tmp_path / "home")


def init(env: dict[str, str], state_dir: Path, db_args: list[str]) -> None:
    code, _, err = run_cli(
        "init",
        "--state-dir",
        str(state_dir),
        *db_args,
        "--admin-email",
        ADMIN["email"],
        "--admin-password",
        ADMIN["password"],
        env=env,
    )
    assert code == 0, err


def read_http_response(sock: socket.socket, timeout: float) -> tuple[int, bytes]:
    """Read one response off a raw socket until the server closes it."""
    sock.settimeout(timeout)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_sigterm_finishes_in_flight_work_closes_websockets_and_exits_zero(
    env: dict[str, str], tmp_path: Path, database_url: str
) -> None:
    state_dir = tmp_path / "state"
    db_args, _ = default_db_args(database_url, state_dir)
    init(env, state_dir, db_args)
    with running_zapd(
        "--state-dir",
        str(state_dir),
        *db_args,
        env=env,
        log_path=tmp_path / "zapd.log",
        check_exit=False,
    ) as zapd:
        r = zapd.request("POST", "/api/v1/auth/login", json=ADMIN)
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]

        ws_url = f"ws://127.0.0.1:{zapd.port}/api/v1/ws"
        with connect(ws_url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            # The hub counts it: the socket is really subscribed before we pull the plug.
            deadline = time.monotonic() + 5
            scrape = {
                "Authorization": f"Bearer {(state_dir / 'metrics.token').read_text().strip()}"
            }
            while "zapd_ws_clients 1.0" not in zapd.get("/metrics", headers=scrape).text:
                assert time.monotonic() < deadline, "the WebSocket never registered"
                time.sleep(0.05)

            # An in-flight request: headers and half the body now, the rest after SIGTERM.
            body = json.dumps(ADMIN).encode()
            slow = socket.create_connection(("127.0.0.1", zapd.port))
            slow.sendall(
                b"POST /api/v1/auth/login HTTP/1.1\r\nHost: zapd\r\n"
                b"Content-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body[:10]
            )
            time.sleep(1.0)  # zapd has parsed the headers and is waiting for the body

            stopped_at = time.monotonic()
            zapd.proc.send_signal(signal.SIGTERM)

            # The WebSocket gets a proper close frame: "going away" or "service restart".
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    ws.recv(timeout=10)
            assert closed.value.rcvd is not None, "TCP dropped without a close frame"
            assert closed.value.rcvd.code in (1001, 1012)

        # New connections are refused while the in-flight request is still honoured.
        assert zapd.proc.poll() is None, "zapd did not wait for the in-flight request"
        with pytest.raises(httpx.TransportError):
            httpx.get(zapd.base_url + "/healthz", timeout=2)
        slow.sendall(body[10:])
        status, answer = read_http_response(slow, timeout=10)
        slow.close()
        assert status == 200, answer
        assert json.loads(answer)["access_token"]

        try:
            code = zapd.proc.wait(EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            zapd.proc.kill()
            raise AssertionError(f"zapd ignored SIGTERM:\n{zapd.log()}") from None
        elapsed = time.monotonic() - stopped_at
        log = zapd.log()
    assert code == 0, log
    assert elapsed < 10, log  # nothing hung until uvicorn's graceful timeout
    assert "zapd stopped" in log  # the lifespan ran to its end (database closed)
    assert "timeout graceful shutdown exceeded" not in log
    assert "Traceback" not in log


def test_sigterm_while_idle_exits_zero_quickly(env: dict[str, str], tmp_path: Path) -> None:
    with running_zapd(
        "--state-dir",
        str(tmp_path / "state"),
        env=env,
        log_path=tmp_path / "zapd.log",
        check_exit=False,
    ) as zapd:
        started = time.monotonic()
        code = zapd.stop()
        assert time.monotonic() - started < 8
        assert code == 0, zapd.log()
        assert "zapd stopped" in zapd.log()


@pytest.fixture
def notify_socket() -> Iterator[tuple[str, socket.socket]]:
    """A datagram socket standing in for systemd's (short path: sun_path is 108 bytes)."""
    directory = tempfile.mkdtemp(prefix="zapn", dir="/tmp")
    path = str(Path(directory) / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    try:
        yield path, sock
    finally:
        sock.close()
        shutil.rmtree(directory, ignore_errors=True)


def receive_until(sock: socket.socket, wanted: str, timeout: float) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while wanted not in got:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {wanted} within {timeout}s; got {got}")
        sock.settimeout(left)
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            continue
    return got


def test_ready_and_stopping_reach_the_notify_socket(
    env: dict[str, str], tmp_path: Path, notify_socket: tuple[str, socket.socket]
) -> None:
    path, sock = notify_socket
    port = free_port()
    log_path = tmp_path / "zapd.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(ZAPD), "--state-dir", str(tmp_path / "state"), "--port", str(port)],
            env=dict(env, NOTIFY_SOCKET=path),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        got = receive_until(sock, "READY=1", timeout=30)
        assert got[0] == "READY=1"
        # Ready means serving: the port answers (a few tries: READY=1 is sent by the
        # lifespan, just before uvicorn binds the port).
        for _ in range(50):
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.02)
        assert r.status_code == 200, r.text
        proc.send_signal(signal.SIGTERM)
        receive_until(sock, "STOPPING=1", timeout=EXIT_TIMEOUT)
        assert proc.wait(EXIT_TIMEOUT) == 0, log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
