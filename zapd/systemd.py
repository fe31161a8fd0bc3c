"""systemd's notify protocol: READY=1, STOPPING=1 and watchdog pings, when asked for."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator

log = logging.getLogger("zapd.systemd")


def notify(state: str) -> bool:
    """Send one sd_notify datagram (e.g. "READY=1"); false when not under systemd."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as exc:
        log.warning("sd_notify(%s) failed: %s", state, exc)
        return False
    return True


def watchdog_interval() -> float | None:
    """Return how often to ping the watchdog (half its timeout), if systemd wants pings."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) <= 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 1_000_000 / 2


async def watchdog_loop(interval: float) -> None:
    """Ping the watchdog every `interval` seconds until cancelled."""
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def service_lifecycle() -> AsyncIterator[None]:
    """Ping the watchdog while serving and report STOPPING=1 on exit.

    READY=1 is sent by zapd's server once its sockets are bound (zapd.main), not here:
    the lifespan starts before uvicorn listens.
    """
    interval = watchdog_interval()
    task = asyncio.create_task(watchdog_loop(interval)) if interval else None
    try:
        yield
    finally:
        notify("STOPPING=1")
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
