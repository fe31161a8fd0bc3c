"""Password hashing (argon2id), token hashing, and the state dir's secret files."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 8
T = TypeVar("T")


HASHING_NICENESS = 10


def _background_priority() -> None:
    """Lower this pool thread's CPU priority (Linux: per thread, inherited by argon2's lanes).

    The event loop keeps the CPU it needs to answer everything else while logins hash.
    """
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)


class HashingBusy(Exception):
    """Every password-hashing slot and queue place is taken: answer 429, try later."""


class Passwords:
    """argon2id hashing with configurable cost (tests lower it; production keeps defaults).

    Invariants:
    - The `*_async` methods run argon2 in a pool of `workers` threads (argon2-cffi releases
      the GIL), never on the event loop; at most `workers + queue` calls are admitted at
      once, the next one raises `HashingBusy` at once instead of piling up.
    - `verify_async(None, password)` verifies against a dummy hash made once (`prepare`), so an
      unknown e-mail costs exactly what a known one does (one verify, no hash).
    - `operations` counts the argon2 operations done, by kind ("hash", "verify").
    """

    def __init__(
        self,
        *,
        time_cost: int = 3,
        memory_kib: int = 65536,
        parallelism: int = 4,
        workers: int = 2,
        queue: int = 16,
    ) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        self._dummy: str | None = None  # made by `prepare` (zapd start), once
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self.capacity = workers + queue
        self.admitted = 0
        self.busy_refusals = 0
        self.operations: Counter[str] = Counter()
        self._count_lock = threading.Lock()

    def prepare(self) -> None:
        """Make the dummy hash unknown users are checked against (once; zapd's start)."""
        if self._dummy is None:
            self._dummy = self._hasher.hash(secrets.token_urlsafe(24))

    def _count(self, kind: str) -> None:
        with self._count_lock:
            self.operations[kind] += 1

    def hash(self, password: str) -> str:
        """Return the argon2id hash of a password (blocking: prefer `hash_async` in zapd)."""
        self._count("hash")
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        """Tell whether `password` matches `password_hash` (blocking)."""
        self._count("verify")
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """Tell whether a stored hash uses other parameters than the current ones."""
        return self._hasher.check_needs_rehash(password_hash)

    async def _offload(self, fn: Callable[..., T], *args: str) -> T:
        if self.admitted >= self.capacity:
            self.busy_refusals += 1
            raise HashingBusy("too many password checks in progress")
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                self._workers, thread_name_prefix="zapd-argon2", initializer=_background_priority
            )
        self.admitted += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        finally:
            self.admitted -= 1

    async def hash_async(self, password: str) -> str:
        """Hash off the event loop (raises HashingBusy when the pool is saturated)."""
        return await self._offload(self.hash, password)

    async def verify_async(self, password_hash: str | None, password: str) -> bool:
        """Verify off the event loop; with no hash (unknown user), verify a dummy: False."""
        if password_hash is None:
            self.prepare()
            assert self._dummy is not None
            await self._offload(self.verify, self._dummy, password)
            return False
        return await self._offload(self.verify, password_hash, password)

    def close(self) -> None:
        """Stop the pool's threads (in-flight operations finish)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None


_default = Passwords()


def hash_password(password: str) -> str:
    """Return the argon2id hash of a password with the default cost."""
    return _default.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Tell whether `password` matches `password_hash`."""
    return _default.verify(password_hash, password)


def password_needs_rehash(password_hash: str) -> bool:
    """Tell whether a stored hash uses outdated parameters."""
    return _default.needs_rehash(password_hash)


def new_token(prefix: str, nbytes: int = 32) -> str:
    """Return a new random bearer secret such as `zap_...`."""
    return prefix + secrets.token_urlsafe(nbytes)


def token_hash(token: str) -> str:
    """Hash a high-entropy bearer secret for storage (a fast hash suffices at 256 bits)."""
    return hashlib.sha256(token.encode()).hexdigest()


def prepare_state_dir(path: Path) -> Path:
    """Create the state dir if needed and make it private to its owner (0700)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


def ensure_secret_file(path: Path, nbytes: int = 48) -> str:
    """Return the secret stored at `path`, creating it (mode 0600) on first use."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        value = path.read_text().strip()
        if not value:
            raise ValueError(f"secret file {path} is empty") from None
        return value
    value = secrets.token_urlsafe(nbytes)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value
