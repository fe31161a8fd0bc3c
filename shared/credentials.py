"""Where zap programs keep login tokens: the OS keyring, else a 0600 file in the config dir.

Shared by zapctl (`zapctl login`) and zaptui, so one login serves both.

Tokens are stored per server URL in its canonical spelling (shared.urls), so however the
server was typed, one daemon has one login; entries stored under another spelling by
older versions are still found. Headless servers usually have no keyring backend; then
the file is used and the user is told so once, at login. The server last logged in to is
remembered (a plain file beside, no secret in it) so later commands need no --server.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from shared.paths import default_config_dir
from shared.urls import normalize_url

SERVICE = "zap"
FILENAME = "credentials.json"
LAST_SERVER_FILENAME = "last-server"


@dataclass
class Stored:
    """One server's login."""

    access_token: str
    refresh_token: str | None
    email: str | None = None


def _no_keyring_here() -> bool:
    """Tell, without importing keyring, that no backend can work here.

    On Linux every OS keyring (Secret Service, KWallet) is reached over the D-Bus session
    bus; a headless server has none. Importing keyring to find that out costs a command
    ~60 ms (it loads every backend), so this answers first unless the user configured a
    backend (PYTHON_KEYRING_BACKEND or keyringrc.cfg).
    """
    if not sys.platform.startswith("linux") or os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return False
    if os.environ.get("PYTHON_KEYRING_BACKEND"):
        return False
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return not (Path(config_home) / "python_keyring" / "keyringrc.cfg").exists()


def keyring_usable() -> bool:
    """Tell whether an OS keyring backend is really available."""
    if _no_keyring_here():
        return False
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


def _file_entry(data: dict[str, Any], server: str) -> Any:
    if server in data:
        return data[server]
    # Stored by an older zapctl under the spelling typed then.
    return next((v for k, v in data.items() if normalize_url(k) == server), None)


def load(server: str) -> Stored | None:
    """Return the stored login for `server`, if any."""
    server = normalize_url(server)
    raw: Any = None
    if keyring_usable():
        import keyring

        text = keyring.get_password(SERVICE, server)
        raw = json.loads(text) if text else None
    if raw is None:
        raw = _file_entry(_read_file(), server)
    if not isinstance(raw, dict) or not raw.get("access_token"):
        return None
    return Stored(raw["access_token"], raw.get("refresh_token"), raw.get("email"))


def save(server: str, stored: Stored) -> str:
    """Store a login; return where it went ("keyring" or the file path)."""
    server = normalize_url(server)
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
    server = normalize_url(server)
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
    stale = [k for k in data if normalize_url(k) == server]
    for key in stale:
        del data[key]
    if stale:
        _write_file(data)
        found = True
    if last_server() == server:
        _last_server_file().unlink(missing_ok=True)
    return found


def _last_server_file() -> Path:
    return default_config_dir() / LAST_SERVER_FILENAME


def remember_server(server: str) -> None:
    """Remember `server` as the one last logged in to."""
    path = _last_server_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(normalize_url(server) + "\n")
    tmp.replace(path)


def last_server() -> str | None:
    """Return the server last logged in to (and not logged out of), if any."""
    try:
        text = _last_server_file().read_text().strip()
    except OSError:
        return None
    return normalize_url(text) if text else None
