"""Building blocks every protocol module uses."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class WireModel(BaseModel):
    """Base of every request/response body: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)


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
