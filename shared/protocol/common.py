"""Building blocks every protocol module uses."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, model_validator

T = TypeVar("T")


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


class WireModel(BaseModel):
    """Base of every request body: unknown fields are refused, and so are NUL characters.

    PostgreSQL cannot store U+0000 in text; refusing it here answers 422 instead of
    failing deep in the database.
    """

    model_config = ConfigDict(extra="forbid", from_attributes=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        if _has_nul(data):
            raise ValueError("text must not contain NUL (U+0000) characters")
        return data


class OutModel(BaseModel):
    """Base of response bodies: read from ORM rows, tolerant to new fields on parse."""

    model_config = ConfigDict(extra="ignore", from_attributes=True)


class ErrorBody(BaseModel):
    """The error document every failure answers with."""

    error: str
    message: str
    details: list[dict[str, Any]] | None = None


class Page(BaseModel, Generic[T]):
    """One page of a cursor-paginated listing; pass `next_cursor` back as `?cursor=`."""

    items: list[T]
    next_cursor: str | None = None


class Deleted(OutModel):
    """Answer of a DELETE."""

    id: str
    deleted: bool = True
