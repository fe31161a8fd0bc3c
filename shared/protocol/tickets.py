"""Tickets and their messages, as the API shows them (read side)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from shared.enums import (
    FlowState,
    MessageDirection,
    MessageStatus,
    MessageType,
    Priority,
    TicketStatus,
)
from shared.protocol.common import OutModel


class ClientSummary(OutModel):
    """Who the ticket is with: `name` is the agent-given name, `profile_name` WhatsApp's."""

    id: uuid.UUID
    name: str | None
    profile_name: str | None = None
    phone: str | None


class DepartmentRef(OutModel):
    """A department, by id and name."""

    id: uuid.UUID
    name: str


class UserRef(OutModel):
    """A user, by id and name."""

    id: uuid.UUID
    name: str


class TicketOut(OutModel):
    """A ticket with the client, department and assignee it points at."""

    id: uuid.UUID
    company_id: uuid.UUID
    number: int
    status: TicketStatus
    flow_state: FlowState
    priority: Priority
    unread_count: int
    reopen_count: int
    client: ClientSummary
    session_id: uuid.UUID | None
    chat_id: uuid.UUID | None
    department: DepartmentRef | None
    assignee: UserRef | None
    category_id: uuid.UUID | None
    timeout_at: datetime | None
    escalated_at: datetime | None
    first_response_at: datetime | None
    last_message_at: datetime | None
    last_inbound_at: datetime | None
    closed_at: datetime | None
    closed_by_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class MessageOut(OutModel):
    """One message (or internal note) of a ticket."""

    id: uuid.UUID
    ticket_id: uuid.UUID | None
    chat_id: uuid.UUID
    session_id: uuid.UUID
    direction: MessageDirection
    type: MessageType
    status: MessageStatus
    body: str | None
    is_note: bool
    author_id: uuid.UUID | None
    media_id: uuid.UUID | None
    wa_message_id: str | None
    quoted_message_id: uuid.UUID | None
    error: str | None
    extra: dict[str, Any]
    wa_timestamp: datetime | None
    created_at: datetime
