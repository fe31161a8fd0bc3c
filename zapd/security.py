"""Password hashing (argon2id), token hashing, and the state dir's secret files."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 8


class Passwords:
    """argon2id hashing with configurable cost (tests lower it; production keeps defaults)."""

    def __init__(self, *, time_cost: int = 3, memory_kib: int = 65536, parallelism: int = 4):
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )

    def hash(self, password: str) -> str:
        """Return the argon2id hash of a password."""
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        """Tell whether `password` matches `password_hash`."""
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """Tell whether a stored hash uses other parameters than the current ones."""
        return self._hasher.check_needs_rehash(password_hash)


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
