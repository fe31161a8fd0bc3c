"""Tickets and their messages as the API shows them, and the bodies that change tickets."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Self

from pydantic import Field, field_validator, model_validator

from shared.enums import (
    FlowState,
    MessageDirection,
    MessageStatus,
    MessageType,
    Priority,
    TicketStatus,
)
from shared.protocol.common import OutModel, WireModel


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


class ServiceWindow(OutModel):
    """The Cloud API's 24-hour window: free-form messages only while `open`, else a template."""

    open: bool
    last_inbound_at: datetime | None
    expires_at: datetime | None


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
    # On Cloud API sessions, in GET /tickets/{id}: the client's 24-hour window there.
    service_window: ServiceWindow | None = None


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


# --------------------------------------------------------------------------- write side

TICKET_TAGS_MAX = 50
CUSTOMER_TEXT_MAX = 4096  # WhatsApp's limit for one text message


def check_customer_text(value: str | None) -> str | None:
    """Refuse a text to the customer that is only blanks; keep it otherwise as written."""
    if value is not None and not value.strip():
        raise ValueError("message cannot be blank")
    return value


class TicketAssign(WireModel):
    """Body of `POST /tickets/{id}/assign` (SUPERVISOR+)."""

    user_id: uuid.UUID
    force: bool = Field(default=False, description="ignore the agent's ticket limit")


class TicketTransfer(WireModel):
    """Body of `POST /tickets/{id}/transfer`: a department, a user, or both.

    To a department only, the ticket waits in that queue (PENDING); with a user it is
    OPEN with them. The customer is told unless `notify_customer` is false; `message`
    replaces the standard text.
    """

    department_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    message: str | None = Field(default=None, min_length=1, max_length=CUSTOMER_TEXT_MAX)
    notify_customer: bool = True
    force: bool = Field(default=False, description="SUPERVISOR+: ignore the agent's limit")

    _text = field_validator("message")(check_customer_text)

    @model_validator(mode="after")
    def _message_needs_notice(self) -> Self:
        if self.message is not None and not self.notify_customer:
            raise ValueError("message is sent to the customer: it needs notify_customer")
        return self


class TicketClose(WireModel):
    """Body of `POST /tickets/{id}/close`; `message` replaces the standard farewell."""

    category_id: uuid.UUID | None = None
    farewell: bool = True
    message: str | None = Field(default=None, min_length=1, max_length=CUSTOMER_TEXT_MAX)

    _text = field_validator("message")(check_customer_text)

    @model_validator(mode="after")
    def _message_needs_farewell(self) -> Self:
        if self.message is not None and not self.farewell:
            raise ValueError("message is the farewell: it needs farewell to be true")
        return self


class TicketUpdate(WireModel):
    """Body of `PATCH /tickets/{id}`: priority (SUPERVISOR+) and the whole set of tags."""

    priority: Priority | None = None
    tag_ids: list[uuid.UUID] | None = Field(default=None, max_length=TICKET_TAGS_MAX)


# Event sent when a ticket waited past its department's response timeout.
TICKET_ESCALATED = "ticket.escalated"


class AssignmentOut(OutModel):
    """One stretch of a ticket's history: who (and which department) held it, and when.

    `ended_at` is null while it lasts; `reason` is how it started (accept, assign,
    transfer, auto, reopen...).
    """

    id: uuid.UUID
    ticket_id: uuid.UUID
    user_id: uuid.UUID | None
    department_id: uuid.UUID | None
    assigned_by_id: uuid.UUID | None
    reason: str | None
    started_at: datetime
    ended_at: datetime | None


class StatusChangeOut(OutModel):
    """One delivery status a message reached, when, and who said so (engine, outbox...)."""

    id: uuid.UUID
    message_id: uuid.UUID
    status: MessageStatus
    source: str | None
    occurred_at: datetime
