"""Password hashing and the state dir's secret files."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from zapd.security import (
    ensure_secret_file,
    hash_password,
    password_needs_rehash,
    prepare_state_dir,
    verify_password,
)


def test_argon2id_hash_verifies_only_the_right_password() -> None:
    h = hash_password("correct horse")
    assert h.startswith("$argon2id$")
    assert verify_password(h, "correct horse")
    assert not verify_password(h, "wrong horse")
    assert not verify_password("not-a-hash", "correct horse")
    assert not password_needs_rehash(h)
    assert hash_password("correct horse") != h  # salted


def test_state_dir_is_private(tmp_path: Path) -> None:
    d = tmp_path / "a" / "state"
    prepare_state_dir(d)
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    d.chmod(0o755)
    prepare_state_dir(d)  # an existing dir is tightened too
    assert stat.S_IMODE(d.stat().st_mode) == 0o700


def test_secret_file_created_once_with_0600(tmp_path: Path) -> None:
    path = tmp_path / "jwt.secret"
    first = ensure_secret_file(path)
    assert len(first) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_secret_file(path) == first  # never regenerated


def test_empty_secret_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "jwt.secret"
    path.write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        ensure_secret_file(path)
