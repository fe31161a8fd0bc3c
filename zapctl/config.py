"""zapctl's settings: one object, loaded once per invocation."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import load_settings

CONFIG_FILENAME = "zapctl.toml"
DEFAULT_SERVER = "http://127.0.0.1:8765"


class CtlSettings(BaseSettings):
    """What zapctl can be told; env vars are ZAP_<FIELD>, e.g. ZAP_SERVER."""

    model_config = SettingsConfigDict(env_prefix="ZAP_", extra="ignore")

    server: str = DEFAULT_SERVER
    token: str | None = None  # an API token (zap_...) for scripts; beats a stored login
    timeout: float = 30.0


def load(server: str | None = None) -> CtlSettings:
    """Load zapctl's settings: flags > ZAP_* env > zapctl.toml > defaults."""
    return load_settings(CtlSettings, CONFIG_FILENAME, server=server)
