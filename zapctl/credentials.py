"""zapctl's token store is `shared.credentials` (zaptui uses the same one)."""

from __future__ import annotations

from shared.credentials import FILENAME, SERVICE, Stored, forget, keyring_usable, load, save

__all__ = ["FILENAME", "SERVICE", "Stored", "forget", "keyring_usable", "load", "save"]
