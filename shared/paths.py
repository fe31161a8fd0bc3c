"""Where zap keeps its files: XDG base directories, or systemd's when it runs as a unit."""

from __future__ import annotations

import os
from pathlib import Path

APP_DIR = "zap"


def _systemd_dir(var: str) -> Path | None:
    # systemd sets e.g. STATE_DIRECTORY=/var/lib/zap (colon-separated when several).
    value = os.environ.get(var, "").strip()
    if not value:
        return None
    return Path(value.split(":")[0])


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var, "").strip()
    base = Path(value) if value and Path(value).is_absolute() else Path.home() / fallback
    return base / APP_DIR


def default_state_dir() -> Path:
    """Return the state dir: $STATE_DIRECTORY, else $XDG_STATE_HOME/zap, else ~/.local/state/zap."""
    return _systemd_dir("STATE_DIRECTORY") or _xdg("XDG_STATE_HOME", ".local/state")


def default_config_dir() -> Path:
    """Return the config dir: $CONFIGURATION_DIRECTORY, else $XDG_CONFIG_HOME/zap."""
    return _systemd_dir("CONFIGURATION_DIRECTORY") or _xdg("XDG_CONFIG_HOME", ".config")
