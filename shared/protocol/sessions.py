"""WhatsApp sessions: one company number driven by one engine."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.enums import Engine, LogLevel, MessageType, SessionStatus
from shared.protocol.common import OutModel, WireModel

# What a secret config value looks like on the way out: the value itself never leaves.
MASK = "********"
MAX_CONFIG_KEYS = 50
MAX_CONFIG_BYTES = 16_000
MAX_FLOW_CONFIG_KEYS = 50
MAX_FLOW_CONFIG_BYTES = 64_000
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
_SECRET_KEY_PARTS = ("token", "secret", "password", "passwd", "api_key", "apikey", "private_key")
_DIGITS = r"^\d{1,32}$"
_API_VERSION = r"^v\d{1,3}\.\d{1,2}$"


def is_secret_key(key: str) -> bool:
    """Tell whether a config key holds a credential (masked in every output)."""
    lowered = key.lower()
    return any(part in lowered for part in _SECRET_KEY_PARTS)


def mask_config(config: dict[str, Any] | None) -> dict[str, Any]:
    """Return `config` with every credential value replaced by `MASK`."""
    return {
        k: (MASK if is_secret_key(k) and v not in (None, "") else v)
        for k, v in (config or {}).items()
    }


def check_webhook_url(value: str | None) -> str | None:
    """Validate an absolute http(s) URL with a host."""
    if value is None:
        return None
    value = value.strip()
    if any(c.isspace() for c in value):
        raise ValueError("webhook_url must not contain spaces")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise ValueError("webhook_url must start with http:// or https://")
    if not parts.hostname:
        raise ValueError("webhook_url needs a host")
    return value


def _check_free_dict(value: dict[str, Any], what: str, max_keys: int, max_bytes: int) -> None:
    if len(value) > max_keys:
        raise ValueError(f"{what} has at most {max_keys} keys")
    for key in value:
        if not _KEY.match(key):
            raise ValueError(
                f"{what}: key {key!r} must be 1-64 letters, digits, '_', '.' or '-' "
                "and start with a letter or '_'"
            )
    if len(json.dumps(value, ensure_ascii=False)) > max_bytes:
        raise ValueError(f"{what} is larger than {max_bytes} bytes as JSON")


class CloudConfig(WireModel):
    """Engine settings of a Meta WhatsApp Cloud API session."""

    phone_number_id: str = Field(pattern=_DIGITS)
    access_token: str = Field(min_length=1, max_length=1000)
    business_account_id: str | None = Field(default=None, pattern=_DIGITS)
    app_secret: str | None = Field(default=None, min_length=1, max_length=200)
    verify_token: str | None = Field(default=None, min_length=1, max_length=200)
    api_version: str | None = Field(default=None, pattern=_API_VERSION)  # None: zapd's default
    # Where the Graph API is (tests, on-premise proxies); None: https://graph.facebook.com
    base_url: str | None = Field(default=None, max_length=500)
    throughput_per_second: float | None = Field(default=None, gt=0, le=1000)  # Meta's tier
    pair_burst: int | None = Field(default=None, ge=1, le=100)  # to one user before pacing
    pair_interval_seconds: float | None = Field(default=None, gt=0, le=600)
    # How long a send in doubt (a crash between Meta's answer and its record) waits for
    # Meta's status webhook to prove it went out, before sending again (0: at once).
    in_doubt_hold_seconds: float | None = Field(default=None, ge=0, le=86400)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, v: str | None) -> str | None:
        if v is None:
            return None
        parts = urlsplit(v.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise ValueError("base_url must be an http(s) URL with a host and no query")
        return v.strip().rstrip("/")


def check_config(engine: Engine, config: dict[str, Any]) -> dict[str, Any]:
    """Validate an engine's settings and return what to store (ValueError when invalid)."""
    _check_free_dict(config, "config", MAX_CONFIG_KEYS, MAX_CONFIG_BYTES)
    if engine is Engine.CLOUD:
        try:
            cloud = CloudConfig.model_validate(config)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}"
                for e in exc.errors()[:5]
            )
            raise ValueError(f"cloud config: {problems}") from None
        return cloud.model_dump(exclude_none=True)
    return dict(config)


def check_flow_config(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Validate the free-form greeting-flow settings."""
    if value is not None:
        _check_free_dict(value, "flow_config", MAX_FLOW_CONFIG_KEYS, MAX_FLOW_CONFIG_BYTES)
    return value


class SessionCreate(WireModel):
    """Body of `POST /sessions`."""

    name: str = Field(min_length=1, max_length=120)
    engine: Engine
    default_department_id: uuid.UUID | None = None
    webhook_url: str | None = Field(default=None, min_length=1, max_length=2000)
    config: dict[str, Any] = Field(default_factory=dict)
    flow_config: dict[str, Any] = Field(default_factory=dict)
    active: bool = True
    company_id: uuid.UUID | None = None  # global admins name the company

    _url = field_validator("webhook_url")(check_webhook_url)
    _flow = field_validator("flow_config")(check_flow_config)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("name must not be blank")
        return v

    @model_validator(mode="after")
    def _engine_config(self) -> SessionCreate:
        self.config = check_config(self.engine, self.config)
        return self


class SessionUpdate(WireModel):
    """Body of `PATCH /sessions/{id}`: only the fields given change.

    `config` is merged key by key into the stored settings (a null value removes a key,
    and a value equal to the mask keeps the stored secret), then validated as a whole
    for the session's engine. `rotate_webhook_secret` mints a new secret, shown once.
    """

    name: str | None = Field(default=None, min_length=1, max_length=120)
    default_department_id: uuid.UUID | None = None
    webhook_url: str | None = Field(default=None, min_length=1, max_length=2000)
    config: dict[str, Any] | None = None
    flow_config: dict[str, Any] | None = None
    active: bool | None = None
    rotate_webhook_secret: bool = False

    _url = field_validator("webhook_url")(check_webhook_url)
    _flow = field_validator("flow_config")(check_flow_config)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None:
            v = v.strip()
            if not v:
                raise ValueError("name must not be blank")
        return v

    @field_validator("config")
    @classmethod
    def _config_size(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is not None:
            _check_free_dict(v, "config", MAX_CONFIG_KEYS, MAX_CONFIG_BYTES)
        return v


class SessionOut(OutModel):
    """A session as the API shows it; credentials in `config` are masked."""

    id: uuid.UUID
    company_id: uuid.UUID
    name: str
    phone: str | None
    engine: Engine
    status: SessionStatus
    status_reason: str | None
    qr_expires_at: datetime | None
    last_heartbeat_at: datetime | None
    webhook_url: str | None
    has_webhook_secret: bool = False
    config: dict[str, Any]
    flow_config: dict[str, Any]
    default_department_id: uuid.UUID | None
    active: bool
    created_at: datetime
    updated_at: datetime

    @model_validator(mode="before")
    @classmethod
    def _secret_flag(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return data
        secret = getattr(data, "webhook_secret", None)
        return {
            name: getattr(data, name)
            for name in cls.model_fields
            if name != "has_webhook_secret" and hasattr(data, name)
        } | {"has_webhook_secret": bool(secret)}

    @field_validator("config")
    @classmethod
    def _mask(cls, v: dict[str, Any]) -> dict[str, Any]:
        return mask_config(v)


class CloudTemplate(OutModel):
    """An approved message template of a Cloud API session's WhatsApp Business Account."""

    name: str
    language: str
    category: str | None = None
    status: str = "APPROVED"
    body: str | None = None  # the BODY component, with {{1}}, {{2}}... placeholders
    parameters: int = 0  # how many body parameters a send must give

    @classmethod
    def from_graph(cls, raw: dict[str, Any]) -> CloudTemplate:
        """Read one entry of Graph's `message_templates` list."""
        body = next(
            (
                c.get("text")
                for c in raw.get("components") or []
                if isinstance(c, dict) and str(c.get("type", "")).upper() == "BODY"
            ),
            None,
        )
        params = len(set(re.findall(r"\{\{\s*(\w+)\s*\}\}", body))) if isinstance(body, str) else 0
        return cls(
            name=str(raw.get("name", "")),
            language=str(raw.get("language", "")),
            category=raw.get("category"),
            status=str(raw.get("status", "APPROVED")),
            body=body if isinstance(body, str) else None,
            parameters=params,
        )


class SessionWithSecret(SessionOut):
    """A session right after create (or secret rotation): the webhook secret, shown once."""

    webhook_secret: str | None = None


class SessionLogOut(OutModel):
    """One line of a session's log."""

    id: uuid.UUID
    session_id: uuid.UUID
    level: LogLevel
    event: str
    message: str
    data: dict[str, Any]
    created_at: datetime


class SessionQr(OutModel):
    """The QR code to link a session, while it waits for one."""

    session_id: uuid.UUID
    status: SessionStatus
    qr: str | None
    expires_at: datetime | None
    sandbox: bool = False  # a simulated network: scan with `zapctl sandbox scan`


class SessionPair(WireModel):
    """Body of `POST /sessions/{id}/pair`: the number to link with a pairing code."""

    phone: str = Field(min_length=3, max_length=32)

    @field_validator("phone")
    @classmethod
    def _e164(cls, value: str) -> str:
        from shared.phone import normalize_phone

        return normalize_phone(value)


class SessionPairingCode(OutModel):
    """A pairing code: typed on the phone under Linked devices → Link with phone number."""

    session_id: uuid.UUID
    phone: str
    code: str  # eight characters; shown as ABCD-EFGH
    expires_at: datetime
    sandbox: bool = False  # a simulated network: enter it with `zapctl sandbox pair`

    @property
    def display(self) -> str:
        """The code as WhatsApp shows it: two groups of four."""
        return f"{self.code[:4]}-{self.code[4:]}"


class SandboxEnterCode(WireModel):
    """Body of `POST /sandbox/{session_id}/pair`: the code the simulated phone types."""

    code: str = Field(min_length=8, max_length=16)


class SandboxScan(WireModel):
    """Body of `POST /sandbox/{session_id}/scan`: the number the simulated phone has."""

    phone: str | None = Field(default=None, max_length=32)


class SandboxInbound(WireModel):
    """Body of `POST /sandbox/{session_id}/inbound`: a simulated customer's message."""

    phone: str = Field(alias="from", min_length=3, max_length=32)
    text: str = Field(min_length=1, max_length=4096)
    name: str | None = Field(default=None, max_length=200)
    wa_message_id: str | None = Field(default=None, min_length=1, max_length=200)
    lid: str | None = Field(default=None, pattern=r"^\d{5,20}@lid$")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SandboxInboundOut(OutModel):
    """What `POST /sandbox/{session_id}/inbound` did."""

    wa_message_id: str
    event_id: uuid.UUID | None
    # True when a message with this id had already arrived: acknowledged, not stored again
    # (the answer is then 200 with `Idempotent-Replayed: true`).
    duplicate: bool = False


class SandboxDelivered(OutModel):
    """A message as the simulated customer's phone received it."""

    wa_message_id: str
    body: str | None
    type: MessageType
    at: datetime
