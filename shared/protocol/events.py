"""The realtime envelope: what goes out on `WS /api/v1/ws`."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, Field


class EventEnvelope(BaseModel):
    """One realtime event; persisted events carry a per-company, increasing `seq`."""

    seq: int | None = None  # None for ephemeral events (typing)
    type: str
    company_id: uuid.UUID
    data: dict[str, Any] = Field(default_factory=dict)


class TypingIn(BaseModel):
    """A client telling the server its agent is typing on a ticket."""

    type: str = "typing"
    ticket_id: uuid.UUID
    typing: bool = True


# Event types, so both sides spell them the same way.
TICKET_NEW = "ticket.new"
TICKET_UPDATE = "ticket.update"
MESSAGE_NEW = "message.new"
MESSAGE_STATUS = "message.status"
SESSION_STATUS = "session.status"
SESSION_QR = "session.qr"
TYPING = "typing"
USER_UPDATE = "user.update"
DEPARTMENT_UPDATE = "department.update"
