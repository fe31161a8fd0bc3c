"""Loading a program's pydantic-settings object: overrides > ZAP_* env > TOML file > defaults."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    TomlConfigSettingsSource,
)

from shared.paths import default_config_dir

S = TypeVar("S", bound=BaseSettings)


class ConfigFileError(ValueError):
    """The TOML config file named explicitly is missing or unreadable."""


def config_file_path(filename: str, explicit: Path | None = None) -> tuple[Path, bool]:
    """Return the TOML file to read and whether it was asked for explicitly."""
    if explicit is not None:
        return explicit, True
    env = os.environ.get("ZAP_CONFIG", "").strip()
    if env:
        return Path(env), True
    return default_config_dir() / filename, False


def load_settings(
    cls: type[S],
    filename: str,
    *,
    config_file: Path | None = None,
    **overrides: Any,
) -> S:
    """Build `cls` once from overrides, env, an optional TOML file and defaults."""
    path, explicit = config_file_path(filename, config_file)
    if explicit and not path.is_file():
        raise ConfigFileError(f"config file not found: {path}")
    toml_path = path if path.is_file() else None

    def sources(
        klass: type[BaseSettings],
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        chosen: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path is not None:
            chosen.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(chosen)

    # Built with type() under the program's own class name, so validation errors say
    # "ZapdSettings", not the name of a helper class.
    loaded: type[S] = type(
        cls.__name__, (cls,), {"settings_customise_sources": classmethod(sources)}
    )
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return loaded(**clean)

    except ValueError as exc:
        if "TOML" in type(exc).__name__ or "toml" in str(exc).lower()[:200]:
            raise ConfigFileError(f"cannot read config file {path}: {exc}") from exc
        raise
