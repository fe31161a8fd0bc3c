"""What zapd secures before anything else runs: its state, then its listening sockets.

Invariants:
- One daemon per state dir: `StateLock` holds an exclusive `fcntl.flock` on
  ``<state dir>/zapd.lock`` for the whole life of the process (the kernel drops it when the
  process dies, however it dies, so a stale file never blocks a restart). A second zapd on
  the same state gets `StartupRefused` naming the holder's pid, before it opens the
  database or starts a single WhatsApp session.
- Sockets are bound (and listening) before the application's lifespan starts sessions
  and workers: a port that is taken is refused with one clear line, and nothing was
  started. Connections that arrive while the lifespan starts wait in the backlog; READY
  (systemd) is sent by the server once it serves them.
- The messages are one line each, for a terminal or the journal; no traceback.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from pathlib import Path

LOCK_FILENAME = "zapd.lock"
BACKLOG = 2048


class StartupRefused(Exception):
    """zapd cannot start; the message is the one line to show."""


class StateLock:
    """An exclusive lock on a state dir, held until `release` or the process ends."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_FILENAME
        self._fd: int | None = None

    def acquire(self) -> StateLock:
        """Take the lock or raise StartupRefused naming the daemon that holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                raise StartupRefused(f"cannot lock {self.path}: {exc.strerror}") from None
            holder = read_holder(self.path)
            who = f"another zapd (pid {holder})" if holder else "another zapd"
            raise StartupRefused(
                f"{who} is already running on state dir {self.path.parent}; "
                "stop it first, or give this one another --state-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        """Drop the lock (the process exiting does the same)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def read_holder(lock_path: Path) -> int | None:
    """Return the pid written in a lock file, if any."""
    try:
        text = lock_path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def is_state_locked(state_dir: Path) -> bool:
    """Tell whether a running zapd holds the state dir (for offline tools)."""
    path = state_dir / LOCK_FILENAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _port_hint(host: str, port: int, exc: OSError) -> str:
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return (
            f"cannot listen on {where}: the port is already in use (another zapd or "
            "program); stop it, or choose another port with --port (or ZAP_PORT)"
        )
    if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) or isinstance(exc, socket.gaierror):
        return f"cannot listen on {where}: no such local address (check --host / ZAP_HOST)"
    if exc.errno == errno.EACCES:
        return f"cannot listen on {where}: permission denied (ports below 1024 need privileges)"
    return f"cannot listen on {where}: {exc.strerror or exc}"


def bind_tcp(host: str, port: int) -> list[socket.socket]:
    """Bind and listen on every address `host` resolves to (as asyncio would)."""
    try:
        infos = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
        )
    except OSError as exc:
        raise StartupRefused(_port_hint(host, port, exc)) from None
    sockets: list[socket.socket] = []
    seen: set[tuple[int, object]] = set()
    try:
        for family, kind, proto, _name, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(BACKLOG)
            if port == 0:  # every address on the same ephemeral port
                port = sock.getsockname()[1]
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise StartupRefused(_port_hint(host, port, exc)) from None
    return sockets


def bind_unix(path: Path) -> socket.socket:
    """Bind and listen on a Unix socket; a stale socket file left by a dead zapd goes.

    Only call this with the state lock held: then no live zapd owns the old file.
    """
    if path.is_socket():
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(path))
            except OSError:
                path.unlink()  # nobody answers: stale
            else:
                raise StartupRefused(f"cannot listen on {path}: another program serves it")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        path.chmod(0o660)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise StartupRefused(f"cannot listen on {path}: {exc.strerror or exc}") from None
    return sock
