"""Clients: the customers who write to the company over WhatsApp."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    field_validator,
    model_validator,
)

from shared.protocol.common import OutModel, WireModel
from shared.protocol.emails import Email

# Event type of a client change (company-wide): data {"id", "action"}.
CLIENT_UPDATE = "client.update"

CUSTOM_FIELDS_MAX = 50
CUSTOM_KEY_MAX = 64
CUSTOM_VALUE_MAX = 1000
TAGS_MAX = 50

CustomKey = Annotated[str, StringConstraints(min_length=1, max_length=CUSTOM_KEY_MAX)]
CustomValue = (
    StrictBool
    | StrictInt
    | Annotated[float, Field(strict=True, allow_inf_nan=False)]
    | Annotated[str, StringConstraints(strict=True, max_length=CUSTOM_VALUE_MAX)]
)
# A flat object: str -> str | int | float | bool (no nesting, no nulls).
CustomFields = dict[CustomKey, CustomValue]
# Names are stored NFC-composed, so searches match "José" however it was typed.
ClientName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(lambda v: unicodedata.normalize("NFC", v)),
]


def _check_custom_fields(value: CustomFields | None) -> CustomFields | None:
    if value is not None and len(value) > CUSTOM_FIELDS_MAX:
        raise ValueError(f"custom_fields holds at most {CUSTOM_FIELDS_MAX} keys")
    return value


class ClientCreate(WireModel):
    """Body of `POST /clients`: a client added by hand (the phone is normalized to E.164)."""

    phone: str = Field(min_length=1, max_length=40)
    name: ClientName | None = None
    email: Email | None = None
    notes: str | None = Field(default=None, max_length=10_000)
    custom_fields: CustomFields | None = None
    company_id: uuid.UUID | None = None  # global admins name the company

    _custom = field_validator("custom_fields")(_check_custom_fields)


class ClientUpdate(WireModel):
    """Body of `PATCH /clients/{id}`: only the fields given change; `null` clears a text.

    `custom_fields` replaces the whole object. `blocked` needs SUPERVISOR or higher.
    The phone is the client's identity and cannot be changed.
    """

    name: ClientName | None = None
    email: Email | None = None
    notes: str | None = Field(default=None, max_length=10_000)
    custom_fields: CustomFields | None = None
    blocked: bool | None = None

    _custom = field_validator("custom_fields")(_check_custom_fields)

    @model_validator(mode="before")
    @classmethod
    def _no_phone(cls, data: Any) -> Any:
        if isinstance(data, dict) and "phone" in data:
            raise ValueError("phone cannot be changed; add a new client instead")
        return data


class ClientTagsSet(WireModel):
    """Body of `PUT /clients/{id}/tags`: the client's whole set of tags."""

    tag_ids: list[uuid.UUID] = Field(max_length=TAGS_MAX)


class ClientOut(OutModel):
    """A client as the API shows it."""

    id: uuid.UUID
    company_id: uuid.UUID
    phone: str | None
    wa_user_id: str | None
    lid: str | None
    name: str | None
    profile_name: str | None
    email: str | None
    blocked: bool
    custom_fields: dict[str, Any]
    notes: str | None
    tag_ids: list[uuid.UUID] = Field(default_factory=list)
    erased_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
