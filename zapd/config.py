"""zapd's settings: one object, loaded once at start and passed down."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.paths import default_state_dir
from shared.settings import load_settings

CONFIG_FILENAME = "zapd.toml"
DB_FILENAME = "zap.db"
JWT_SECRET_FILENAME = "jwt.secret"
METRICS_TOKEN_FILENAME = "metrics.token"
MEDIA_DIRNAME = "media"

# Images, audio, video, PDF, office documents and plain text.
DEFAULT_MEDIA_TYPES = (
    "image/*",
    "audio/*",
    "video/*",
    "application/pdf",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
    "application/rtf",
    "text/plain",
    "text/csv",
)
_MIME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/(\*|[a-z0-9][a-z0-9!#$&^_.+-]*)$")


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
    # Password hashing runs in a pool of this many threads, off the event loop; at most
    # `password_hash_queue` more wait for one, further logins answer 429 at once.
    password_hash_workers: int = Field(2, ge=1, le=64)
    password_hash_queue: int = Field(16, ge=0, le=10_000)
    # Brute force, besides (e-mail, address): failures per account from any address and
    # per address on any account, counted over `login_window`; past the limit the lock
    # doubles from `login_lockout_base` seconds up to `login_lockout_cap`.
    login_account_max_failures: int = Field(10, ge=1)
    login_address_max_failures: int = Field(20, ge=1)
    login_lockout_base: int = Field(60, ge=1)
    login_lockout_cap: int = Field(3600, ge=1)
    # GET /metrics (Prometheus) wants `Authorization: Bearer <token>`: this token, or the
    # one zapd writes to <state dir>/metrics.token (0600) on first start. Turning
    # `metrics_require_token` off serves it to anyone who reaches the port.
    metrics_token: SecretStr | None = None
    metrics_require_token: bool = True
    # Sessions: every running session's engine is pinged this often; one that does not
    # answer within the timeout is marked ERROR ("engine not answering").
    session_heartbeat_interval: float = Field(30.0, gt=0, le=3600)
    session_heartbeat_timeout: float = Field(10.0, gt=0, le=600)
    # Input and realtime limits
    max_body_bytes: int = Field(1 << 20, ge=1024)  # JSON bodies; media has its own limit
    max_json_depth: int = Field(32, ge=2, le=1000)  # nesting of arrays/objects in a body
    ws_queue_size: int = Field(1000, ge=10)  # events buffered per client before it is dropped
    ws_ping_interval: float = Field(20.0, gt=0)
    ws_ping_timeout: float = Field(20.0, gt=0)
    # Ticket scheduler: response timeouts and auto-assignment
    scheduler_interval: float = Field(1.0, gt=0, le=3600)  # seconds between ticks
    # An auto-assigned agent who has not answered within this many seconds loses the
    # ticket to another agent (0: never).
    assignee_silence_seconds: int = Field(600, ge=0, le=7 * 86400)
    # Outbox: per-session send rate (a token bucket) and random jitter are ban-risk
    # control; failed sends retry with exponential backoff, then go to the dead letter.
    outbox_rate_per_second: float = Field(1.0, gt=0, le=1000)  # per session
    outbox_burst: int = Field(5, ge=1, le=1000)  # sends a rested session may make at once
    outbox_jitter_ms: int = Field(300, ge=0, le=60_000)  # random pause before each send
    outbox_max_attempts: int = Field(8, ge=1, le=100)
    outbox_backoff_base: float = Field(2.0, gt=0, le=3600)  # seconds, doubled per attempt
    outbox_backoff_cap: float = Field(300.0, gt=0, le=86400)  # seconds
    outbox_poll_interval: float = Field(0.2, gt=0, le=60)  # seconds between due-row scans
    outbox_lock_seconds: float = Field(60.0, gt=0, le=3600)  # a claim older than this is retaken
    # Media uploads (the body-limit middleware reads max_media_bytes for /api/v1/media)
    max_media_bytes: int = Field(16 << 20, ge=1024, le=2 << 30)
    # What an upload may be, judged by its content (see zapd.services.delivery.media): exact
    # types or "type/*"; anything else is refused with 415.
    media_allowed_types: list[str] = Field(
        default_factory=lambda: list(DEFAULT_MEDIA_TYPES), max_length=200
    )

    # webjs engine (WhatsApp Web through Playwright + wa-js; see zapd.connectors.webjs)
    chromium: Path | None = None  # ZAP_CHROMIUM; default /usr/bin/chromium, else PATH
    wajs_path: Path | None = None  # ZAP_WAJS_PATH; default the ./dev setup cache
    webjs_url: str = "https://web.whatsapp.com/"
    webjs_headless: bool = True
    webjs_user_agent: str = (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36"
    )
    webjs_heartbeat_seconds: float = Field(10.0, gt=0, le=600)
    webjs_ready_timeout: float = Field(90.0, gt=0, le=3600)  # page load + wa-js ready
    webjs_max_qr_rotations: int = Field(6, ge=1, le=1000)  # unscanned QRs before giving up
    webjs_start_concurrency: int = Field(2, ge=1, le=64)  # browsers starting at once
    webjs_restart_backoff_base: float = Field(1.0, gt=0, le=600)  # seconds, doubled per try
    webjs_restart_backoff_cap: float = Field(60.0, gt=0, le=3600)
    webjs_memory_limit_mb: int = Field(1024, ge=0)  # PSS of one browser's tree; 0: no guard
    webjs_catchup_chats: int = Field(50, ge=1, le=1000)  # recent chats looked at after a gap
    webjs_catchup_messages: int = Field(50, ge=1, le=1000)  # messages per chat looked at

    @field_validator("media_allowed_types")
    @classmethod
    def _mime_patterns(cls, v: list[str]) -> list[str]:
        out = [p.strip().lower() for p in v if p.strip()]
        for pattern in out:
            if not _MIME_PATTERN.match(pattern):
                raise ValueError(f"media_allowed_types: {pattern!r} is not type/subtype or type/*")
        return out

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
    def media_dir(self) -> Path:
        """Return where uploaded and received media files are stored."""
        return self.state_dir / MEDIA_DIRNAME

    @property
    def jwt_secret_file(self) -> Path:
        """Return where the generated JWT secret lives."""
        return self.state_dir / JWT_SECRET_FILENAME

    @property
    def metrics_token_file(self) -> Path:
        """Return where the generated Prometheus scrape token lives."""
        return self.state_dir / METRICS_TOKEN_FILENAME


def load(config_file: Path | None = None, **overrides: object) -> ZapdSettings:
    """Load zapd's settings: CLI overrides > ZAP_* env > TOML file > defaults."""
    return load_settings(ZapdSettings, CONFIG_FILENAME, config_file=config_file, **overrides)
