"""zapd's settings: one object, loaded once at start and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.paths import default_state_dir
from shared.settings import load_settings

CONFIG_FILENAME = "zapd.toml"
DB_FILENAME = "zap.db"
JWT_SECRET_FILENAME = "jwt.secret"


class ZapdSettings(BaseSettings):
    """Everything zapd can be told; env vars are ZAP_<FIELD>."""

    model_config = SettingsConfigDict(env_prefix="ZAP_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8765, ge=0, le=65535)
    unix_socket: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    state_dir: Path = Field(default_factory=default_state_dir)
    database_url: str | None = None
    auto_migrate: bool = True
    jwt_secret: SecretStr | None = None
    log_format: Literal["auto", "json", "text"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Auth
    access_token_ttl: int = Field(900, ge=30, le=86400)  # seconds
    refresh_token_ttl: int = Field(30 * 86400, ge=60)
    login_max_failures: int = Field(5, ge=1)
    login_window: int = Field(60, ge=1)  # seconds
    argon2_time_cost: int = Field(3, ge=1)
    argon2_memory_kib: int = Field(65536, ge=8)
    # Input and realtime limits
    max_body_bytes: int = Field(1 << 20, ge=1024)  # JSON bodies; media has its own limit
    ws_queue_size: int = Field(1000, ge=10)  # events buffered per client before it is dropped
    ws_ping_interval: float = Field(20.0, gt=0)
    ws_ping_timeout: float = Field(20.0, gt=0)

    @field_validator("state_dir")
    @classmethod
    def _absolute(cls, v: Path) -> Path:
        return v.expanduser().resolve()

    @property
    def db_url(self) -> str:
        """Return the database URL, SQLite in the state dir unless one was given."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.state_dir / DB_FILENAME}"

    @property
    def jwt_secret_file(self) -> Path:
        """Return where the generated JWT secret lives."""
        return self.state_dir / JWT_SECRET_FILENAME


def load(config_file: Path | None = None, **overrides: object) -> ZapdSettings:
    """Load zapd's settings: CLI overrides > ZAP_* env > TOML file > defaults."""
    return load_settings(ZapdSettings, CONFIG_FILENAME, config_file=config_file, **overrides)
