"""Where zap programs keep login tokens: the OS keyring, else a 0600 file in the config dir.

Shared by zapctl (`zapctl login`) and zaptui, so one login serves both. Tokens are stored
per server URL. Headless servers usually have no keyring backend; then the file is used
and the user is told so once, at login.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from shared.paths import default_config_dir

SERVICE = "zap"
FILENAME = "credentials.json"


@dataclass
class Stored:
    """One server's login."""

    access_token: str
    refresh_token: str | None
    email: str | None = None


def keyring_usable() -> bool:
    """Tell whether an OS keyring backend is really available."""
    try:
        import keyring
        from keyring.backends import fail

        backend = keyring.get_keyring()
    except Exception:
        return False
    if isinstance(backend, fail.Keyring):
        return False
    return not (type(backend).__name__ == "ChainerBackend" and not getattr(backend, "backends", 1))


def file_path() -> Path:
    """Return the token file used when there is no OS keyring."""
    return default_config_dir() / FILENAME


_file = file_path


def _read_file() -> dict[str, Any]:
    try:
        data = json.loads(_file().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_file(data: dict[str, Any]) -> None:
    path = _file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    tmp.replace(path)
    path.chmod(0o600)


def load(server: str) -> Stored | None:
    """Return the stored login for `server`, if any."""
    raw: Any = None
    if keyring_usable():
        import keyring

        text = keyring.get_password(SERVICE, server)
        raw = json.loads(text) if text else None
    if raw is None:
        raw = _read_file().get(server)
    if not isinstance(raw, dict) or not raw.get("access_token"):
        return None
    return Stored(raw["access_token"], raw.get("refresh_token"), raw.get("email"))


def save(server: str, stored: Stored) -> str:
    """Store a login; return where it went ("keyring" or the file path)."""
    if keyring_usable():
        import keyring

        keyring.set_password(SERVICE, server, json.dumps(asdict(stored)))
        return "keyring"
    data = _read_file()
    data[server] = asdict(stored)
    _write_file(data)
    return str(_file())


def forget(server: str) -> bool:
    """Remove the stored login for `server`; tell whether there was one."""
    found = False
    if keyring_usable():
        import keyring
        from keyring.errors import PasswordDeleteError

        try:
            keyring.delete_password(SERVICE, server)
            found = True
        except PasswordDeleteError:
            pass
    data = _read_file()
    if server in data:
        del data[server]
        _write_file(data)
        found = True
    return found
