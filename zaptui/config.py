"""zaptui's settings: one pydantic-settings object, environment prefix `ZAP_`.

Invariants: every knob the TUI has lives here (nothing reads `os.environ` elsewhere);
command-line flags override the environment (`TuiSettings(**overrides)`); `email` and
`password` only pre-fill or perform the first login (the demo uses them) and are never
written anywhere — the token store keeps tokens, not passwords.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.client import DEFAULT_URL


class TuiSettings(BaseSettings):
    """What zaptui reads from `ZAP_*` variables (and its command line)."""

    model_config = SettingsConfigDict(env_prefix="ZAP_", extra="ignore")

    server: str = Field(default=DEFAULT_URL, description="zapd URL (ZAP_SERVER)")
    lang: str = Field(default="pt_BR", description="pt_BR or en (ZAP_LANG)")
    theme: Literal["dark", "light"] = Field(default="dark", description="ZAP_THEME")
    bell: bool = Field(default=True, description="ring the terminal bell on notifications")
    toasts: bool = Field(default=True, description="show a toast on notifications")
    email: str | None = Field(default=None, description="pre-filled login e-mail")
    password: SecretStr | None = Field(
        default=None, description="log in at start with `email` (the demo uses it)"
    )
    page_size: int = Field(default=100, ge=10, le=500, description="messages per history page")
    reconnect_initial: float = Field(default=0.5, gt=0, le=30, description="first backoff (s)")
    reconnect_max: float = Field(default=10.0, gt=0, le=300, description="largest backoff (s)")
    typing_interval: float = Field(default=3.0, gt=0, description="resend 'typing' every (s)")
