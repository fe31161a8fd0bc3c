"""Chromium processes on Linux, through /proc: who they are, their memory, their end.

Invariants: a browser is identified by its exact `--user-data-dir=<profile>` argument
and the absence of `--type=` (helpers carry `--type=renderer|zygote|...`); its tree is
every descendant by parent pid. A `Singleton*` lock of a profile is removed only when
the pid it names is not a live process on this host.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from pathlib import Path

PROC = Path("/proc")
SINGLETONS = ("SingletonLock", "SingletonSocket", "SingletonCookie")


def _cmdline(pid: int) -> list[str]:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _ppid_state(pid: int) -> tuple[int, str] | None:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    rest = stat[stat.rfind(")") + 2 :].split()
    return int(rest[1]), rest[0]


def pids() -> list[int]:
    """Return every pid on the machine."""
    return [int(p.name) for p in PROC.iterdir() if p.name.isdigit()]


def alive(pid: int) -> bool:
    """Return whether `pid` is a running (not zombie) process."""
    found = _ppid_state(pid)
    return found is not None and found[1] != "Z"


def browsers_of(profile: Path) -> list[int]:
    """Return the pids of Chromium main processes running with this profile."""
    want = f"--user-data-dir={profile}"
    out = []
    for pid in pids():
        args = _cmdline(pid)
        if want in args and not any(a.startswith("--type=") for a in args) and alive(pid):
            out.append(pid)
    return out


def tree(root: int) -> list[int]:
    """Return `root` and all its live descendants."""
    children: dict[int, list[int]] = {}
    for pid in pids():
        found = _ppid_state(pid)
        if found is not None and found[1] != "Z":
            children.setdefault(found[0], []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if alive(pid):
            out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def pss_bytes(pid: int) -> int:
    """Return a process's proportional set size (smaps_rollup), 0 when unreadable."""
    try:
        text = (PROC / str(pid) / "smaps_rollup").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


def tree_pss(root: int) -> int:
    """Return the PSS of a process and its descendants, in bytes."""
    return sum(pss_bytes(pid) for pid in tree(root))


def chromium_orphans() -> list[int]:
    """Return Chromium processes whose parent is init or a subreaper (left behind)."""
    out = []
    for pid in pids():
        args = _cmdline(pid)
        if not args or "chrom" not in Path(args[0]).name:
            continue
        found = _ppid_state(pid)
        if found is not None and found[1] != "Z" and found[0] == 1:
            out.append(pid)
    return out


def kill_tree(root: int, grace: float = 3.0) -> None:
    """SIGTERM a process tree, then SIGKILL what is left after `grace` seconds."""
    members = tree(root)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in members:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + (grace if sig == signal.SIGTERM else 2.0)
        while time.monotonic() < deadline:
            members = [p for p in members if alive(p)]
            if not members:
                return
            time.sleep(0.05)


def lock_owner(profile: Path) -> tuple[str, int] | None:
    """Return (host, pid) named by the profile's SingletonLock, if it has one."""
    lock = profile / "SingletonLock"
    try:
        target = os.readlink(lock)
    except OSError:
        return None
    host, _, pid = target.rpartition("-")
    return (host, int(pid)) if pid.isdigit() else None


def clear_stale_locks(profile: Path) -> bool:
    """Remove the profile's Singleton* files if their owner is dead; return whether it did.

    A lock held by a live process on this host is left alone (that browser owns the
    profile); a lock from another host is left alone too (a shared disk: not ours to judge).
    """
    owner = lock_owner(profile)
    if owner is None:
        present = [profile / n for n in SINGLETONS if (profile / n).is_symlink()]
        for path in present:
            path.unlink(missing_ok=True)
        return bool(present)
    host, pid = owner
    if host != socket.gethostname() or alive(pid):
        return False
    for name in SINGLETONS:
        (profile / name).unlink(missing_ok=True)
    return True
