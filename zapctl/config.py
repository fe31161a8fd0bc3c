"""zapctl's settings: one object, loaded once per invocation.

Invariants: `server` is always in the canonical spelling of shared.urls (logins are
stored under it, so `127.0.0.1:8765` and `http://127.0.0.1:8765/` are one server); when
no flag, ZAP_SERVER or zapctl.toml names a server, it is the one last logged in to (see
zapctl.credentials), else the default.
"""

from __future__ import annotations

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import load_settings
from shared.urls import DEFAULT_URL, normalize_url

CONFIG_FILENAME = "zapctl.toml"
DEFAULT_SERVER = DEFAULT_URL


class CtlSettings(BaseSettings):
    """What zapctl can be told; env vars are ZAP_<FIELD>, e.g. ZAP_SERVER."""

    model_config = SettingsConfigDict(env_prefix="ZAP_", extra="ignore")

    server: str = DEFAULT_SERVER
    token: str | None = None  # an API token (zap_...) for scripts; beats a stored login
    timeout: float = 30.0

    @field_validator("server")
    @classmethod
    def _canonical(cls, value: str) -> str:
        return normalize_url(value)


def load(server: str | None = None) -> CtlSettings:
    """Load zapctl's settings: flags > ZAP_* env > zapctl.toml > last login > defaults."""
    conf = load_settings(CtlSettings, CONFIG_FILENAME, server=server)
    if "server" not in conf.model_fields_set:
        from zapctl.credentials import last_server

        remembered = last_server()
        if remembered:
            conf.server = normalize_url(remembered)
    return conf
