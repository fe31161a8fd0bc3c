"""Authentication: login, refresh, the current user, API tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from shared.enums import Presence, Role
from shared.protocol.common import OutModel, WireModel


class LoginRequest(WireModel):
    """Credentials for `POST /auth/login`."""

    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class RefreshRequest(WireModel):
    """Body of `POST /auth/refresh` and `POST /auth/logout`."""

    refresh_token: str = Field(min_length=10, max_length=200)


class LogoutRequest(WireModel):
    """Body of `POST /auth/logout`: the refresh token whose login ends (optional)."""

    refresh_token: str | None = Field(default=None, min_length=10, max_length=200)


class TokenPair(OutModel):
    """Tokens returned by login and refresh."""

    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int  # seconds of life of the access token


class Me(OutModel):
    """Who the caller is."""

    id: uuid.UUID | None  # None for an API token
    email: str | None
    name: str
    company_id: uuid.UUID | None
    role: Role | None
    is_global_admin: bool
    department_ids: list[uuid.UUID] = Field(default_factory=list)
    presence: Presence | None = None
    via_api_token: bool = False


class MeUpdate(WireModel):
    """What users change about themselves: name, presence, password."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    presence: Presence | None = None
    current_password: str | None = Field(default=None, max_length=1024)
    new_password: str | None = Field(default=None, min_length=8, max_length=1024)


class ApiTokenCreate(WireModel):
    """Body of `POST /api-tokens`."""

    name: str = Field(min_length=1, max_length=120)
    role: Role = Role.AGENT
    expires_at: datetime | None = None
    company_id: uuid.UUID | None = None  # global admins name the company


class ApiTokenOut(OutModel):
    """An API token as listed (never the secret)."""

    id: uuid.UUID
    company_id: uuid.UUID
    name: str
    prefix: str
    role: Role
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


class ApiTokenCreated(ApiTokenOut):
    """A new API token: the only time its secret is shown."""

    token: str
