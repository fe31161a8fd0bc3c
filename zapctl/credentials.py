"""zapctl's token store is `shared.credentials` (zaptui uses the same one)."""

from __future__ import annotations

from shared.credentials import (
    FILENAME,
    SERVICE,
    Stored,
    file_path,
    forget,
    keyring_usable,
    last_server,
    load,
    remember_server,
    save,
)

_file = file_path  # `zapctl doctor` names the file

__all__ = [
    "FILENAME",
    "SERVICE",
    "Stored",
    "file_path",
    "forget",
    "keyring_usable",
    "last_server",
    "load",
    "remember_server",
    "save",
]
