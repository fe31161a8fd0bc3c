"""Company catalog: ticket closing categories, tags and quick replies."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints, field_validator

from shared.protocol.common import OutModel, WireModel

# Event types of catalog changes (company-wide; a department's quick reply carries it).
CATEGORY_UPDATE = "category.update"
TAG_UPDATE = "tag.update"
QUICK_REPLY_UPDATE = "quick_reply.update"

_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_SHORTCUT = re.compile(r"^[a-z0-9_-]{1,64}$")

SHORTCUT_MAX = 64
BODY_MAX = 4096

CategoryName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)
]
TagName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]


def check_color(value: str | None) -> str | None:
    """Validate a `#RRGGBB` color and return it lower-cased."""
    if value is None:
        return None
    if not _COLOR.match(value):
        raise ValueError("color must look like #RRGGBB (hex digits)")
    return value.lower()


def check_shortcut(value: str | None) -> str | None:
    """Strip one leading "/" and validate: 1..64 lower-case letters, digits, "-" or "_"."""
    if value is None:
        return None
    value = value.removeprefix("/")
    if not _SHORTCUT.match(value):
        raise ValueError(
            f"shortcut must be 1..{SHORTCUT_MAX} lower-case letters, digits, '-' or '_'"
        )
    return value


# --------------------------------------------------------------------------- categories


class CategoryCreate(WireModel):
    """Body of `POST /categories`."""

    name: CategoryName
    description: str | None = Field(default=None, max_length=2000)
    active: bool = True
    company_id: uuid.UUID | None = None  # global admins name the company


class CategoryUpdate(WireModel):
    """Body of `PATCH /categories/{id}`: only the fields given change."""

    name: CategoryName | None = None
    description: str | None = Field(default=None, max_length=2000)
    active: bool | None = None


class CategoryOut(OutModel):
    """A ticket closing category."""

    id: uuid.UUID
    company_id: uuid.UUID
    name: str
    description: str | None
    active: bool
    created_at: datetime
    updated_at: datetime


# --------------------------------------------------------------------------- tags


class TagCreate(WireModel):
    """Body of `POST /tags`."""

    name: TagName
    color: str | None = Field(default=None, max_length=7)
    company_id: uuid.UUID | None = None  # global admins name the company

    _color = field_validator("color")(check_color)


class TagUpdate(WireModel):
    """Body of `PATCH /tags/{id}`: only the fields given change."""

    name: TagName | None = None
    color: str | None = Field(default=None, max_length=7)

    _color = field_validator("color")(check_color)


class TagOut(OutModel):
    """A tag."""

    id: uuid.UUID
    company_id: uuid.UUID
    name: str
    color: str | None
    created_at: datetime


# --------------------------------------------------------------------------- quick replies


class QuickReplyCreate(WireModel):
    """Body of `POST /quick-replies`; `department_id` None makes it company-wide."""

    shortcut: str = Field(min_length=1, max_length=SHORTCUT_MAX + 1)
    body: str = Field(min_length=1, max_length=BODY_MAX)
    department_id: uuid.UUID | None = None
    company_id: uuid.UUID | None = None  # global admins name the company

    _shortcut = field_validator("shortcut")(check_shortcut)


class QuickReplyUpdate(WireModel):
    """Body of `PATCH /quick-replies/{id}`; `department_id: null` makes it company-wide."""

    shortcut: str | None = Field(default=None, min_length=1, max_length=SHORTCUT_MAX + 1)
    body: str | None = Field(default=None, min_length=1, max_length=BODY_MAX)
    department_id: uuid.UUID | None = None

    _shortcut = field_validator("shortcut")(check_shortcut)


class QuickReplyOut(OutModel):
    """A canned answer; agents type `/shortcut` to expand it."""

    id: uuid.UUID
    company_id: uuid.UUID
    department_id: uuid.UUID | None
    shortcut: str
    body: str
    created_by_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
