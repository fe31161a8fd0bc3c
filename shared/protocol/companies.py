"""Companies (tenants): CNPJ, time zone, locale and company-wide settings."""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, computed_field, field_validator

from shared.cnpj import format_cnpj, normalize_cnpj
from shared.protocol.common import OutModel, WireModel
from shared.protocol.departments import check_timezone

Locale = Literal["pt_BR", "en"]

DEFAULT_TIMEZONE = "America/Sao_Paulo"
DEFAULT_LOCALE: Locale = "pt_BR"

# Event type sent when a company's name, settings or state change.
COMPANY_UPDATE = "company.update"


def check_cnpj(value: str | None) -> str | None:
    """Validate a CNPJ (formatted or not, numeric or alphanumeric); return its 14 characters."""
    if value is None:
        return None
    return normalize_cnpj(value)  # InvalidCNPJ is a ValueError: pydantic reports a 422


class CompanySettings(WireModel):
    """Company-wide switches; every key has a default, unknown keys are refused."""

    # Prefix agents' messages with their name in bold ("*Ana*:\n...").
    agent_name_prefix: bool = True
    # A client writing within this many minutes of a close reopens that ticket (0: never).
    reopen_window_minutes: int = Field(default=15, ge=0, le=7 * 24 * 60)
    # A client back within this many days is offered their last department (0: never).
    returning_client_days: int = Field(default=30, ge=0, le=365)
    # Invalid greeting-menu answers tolerated before the ticket goes to a human.
    menu_max_attempts: int = Field(default=3, ge=1, le=10)

    @classmethod
    def from_stored(cls, value: Any) -> CompanySettings:
        """Read settings as stored: missing keys take defaults, unknown keys are dropped.

        A pure function of the stored value: a value of hashable items is read once and
        copied after (a few stored forms at most; the inbound pipeline asks per ticket).
        """
        if not isinstance(value, dict):
            return cls()
        try:
            key = tuple(sorted((k, type(v), v) for k, v in value.items()))
            hash(key)
        except TypeError:  # an unhashable (or unorderable) stored value: read it each time
            return cls._read_stored(value)
        return _stored_settings(cls, key).model_copy()

    @classmethod
    def _read_stored(cls, value: dict[Any, Any]) -> CompanySettings:
        known = {k: v for k, v in value.items() if k in cls.model_fields}
        merged = cls().model_dump()
        for key, item in known.items():
            try:  # a stored value out of today's bounds falls back to the default
                cls.model_validate({key: item})
            except ValueError:
                continue
            merged[key] = item
        return cls.model_validate(merged)


@functools.lru_cache(maxsize=256)
def _stored_settings(
    cls: type[CompanySettings], items: tuple[tuple[Any, type, Any], ...]
) -> CompanySettings:
    """`CompanySettings._read_stored` of a stored value, as (key, type, value) items."""
    return cls._read_stored({k: v for k, _, v in items})


class CompanySettingsUpdate(WireModel):
    """Settings keys to change; the keys not given keep their value."""

    agent_name_prefix: bool | None = None
    reopen_window_minutes: int | None = Field(default=None, ge=0, le=7 * 24 * 60)
    returning_client_days: int | None = Field(default=None, ge=0, le=365)
    menu_max_attempts: int | None = Field(default=None, ge=1, le=10)


class CompanyCreate(WireModel):
    """Body of `POST /companies` (global admins)."""

    name: str = Field(min_length=1, max_length=200)
    cnpj: str = Field(min_length=1, max_length=32, description="formatted or digits only")
    timezone: str = Field(default=DEFAULT_TIMEZONE, max_length=64)
    locale: Locale = DEFAULT_LOCALE
    settings: CompanySettings = Field(default_factory=CompanySettings)

    _cnpj = field_validator("cnpj")(check_cnpj)
    _tz = field_validator("timezone")(check_timezone)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("name cannot be blank")
        return v


class CompanyUpdate(WireModel):
    """Body of `PATCH /companies/{id}`: only the fields given change.

    Company admins may change name, timezone, locale and settings; `cnpj` and
    `active` are for global admins.
    """

    name: str | None = Field(default=None, min_length=1, max_length=200)
    cnpj: str | None = Field(default=None, min_length=1, max_length=32)
    timezone: str | None = Field(default=None, max_length=64)
    locale: Locale | None = None
    settings: CompanySettingsUpdate | None = None
    active: bool | None = None

    _cnpj = field_validator("cnpj")(check_cnpj)
    _tz = field_validator("timezone")(check_timezone)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is None:
            return None
        v = v.strip()
        if not v:
            raise ValueError("name cannot be blank")
        return v


class CompanyOut(OutModel):
    """A company as the API shows it."""

    id: uuid.UUID
    name: str
    cnpj: str  # 14 characters, unmasked: digits, or [0-9A-Z]{12} + 2 digits
    active: bool
    timezone: str
    locale: str
    settings: CompanySettings
    created_at: datetime
    updated_at: datetime

    @field_validator("settings", mode="before")
    @classmethod
    def _settings(cls, v: Any) -> Any:
        return v if isinstance(v, CompanySettings) else CompanySettings.from_stored(v)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cnpj_formatted(self) -> str:
        """Return the CNPJ as 11.222.333/0001-81."""
        try:
            return format_cnpj(self.cnpj)
        except ValueError:
            return self.cnpj
