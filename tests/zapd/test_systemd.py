"""sd_notify over a real Unix datagram socket, as systemd would receive it."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from zapd import systemd


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


def test_no_socket_means_no_notify(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert systemd.notify("READY=1") is False


async def test_lifecycle_sends_watchdog_and_stopping(
    notify_socket: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "100000")  # ping every 50 ms
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    async with systemd.service_lifecycle():
        await asyncio.sleep(0.2)
    got = []
    notify_socket.settimeout(0.5)
    while True:
        try:
            got.append(notify_socket.recv(100).decode())
        except TimeoutError:
            break
    assert "READY=1" not in got  # sent by the server once it listens (zapd.main)
    assert got.count("WATCHDOG=1") >= 2

    assert got[-1] == "STOPPING=1"


def test_watchdog_for_another_pid_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert systemd.watchdog_interval() is None
    monkeypatch.delenv("WATCHDOG_PID")
    assert systemd.watchdog_interval() == 0.5
