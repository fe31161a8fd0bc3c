"""Sending messages (agents and scripts) and the outbox they travel through."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field, model_validator

from shared.enums import MessageStatus, OutboxState
from shared.protocol.common import OutModel, WireModel
from shared.protocol.tickets import MessageOut

__all__ = [
    "BODY_MAX",
    "IDEMPOTENCY_KEY_MAX",
    "MessageOut",
    "MessageSend",
    "OutboxOut",
    "TemplateSend",
]

BODY_MAX = 4096  # WhatsApp's own limit for a text message
IDEMPOTENCY_KEY_MAX = 200
IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"  # "true" when a key's first answer is repeated


class TemplateSend(WireModel):
    """A Cloud API message template to send (the only kind allowed outside the 24-hour window)."""

    name: str = Field(min_length=1, max_length=512, pattern=r"^[a-z0-9_]+$")
    language: str = Field(default="pt_BR", min_length=2, max_length=15)
    parameters: list[str] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _params(self) -> TemplateSend:
        for p in self.parameters:
            if not p.strip() or len(p) > 1024:
                raise ValueError("template parameters are 1-1024 characters, not blank")
        return self


class MessageSend(WireModel):
    """Body of `POST /messages`: to a ticket, or (supervisors and up) to a phone on a session.

    `body` may start with `/shortcut` to expand a quick reply. `note: true` stores an
    internal note, shown to agents and never sent to the customer.
    """

    ticket_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    to: str | None = Field(default=None, min_length=1, max_length=32, description="a phone")
    body: str | None = Field(default=None, max_length=BODY_MAX)
    media_id: uuid.UUID | None = None
    note: bool = False
    quoted_message_id: uuid.UUID | None = None
    template: TemplateSend | None = None  # Cloud API sessions only

    @model_validator(mode="after")
    def _target_and_content(self) -> MessageSend:
        by_ticket = self.ticket_id is not None
        by_phone = self.session_id is not None or self.to is not None
        if by_ticket == by_phone:
            raise ValueError("give either ticket_id, or session_id and to")
        if by_phone and (self.session_id is None or self.to is None):
            raise ValueError("session_id and to go together")
        if by_phone and self.note:
            raise ValueError("internal notes belong to a ticket: give ticket_id")
        if by_phone and self.quoted_message_id is not None:
            raise ValueError("quoted_message_id needs ticket_id")
        if self.template is not None:
            if self.body is not None or self.media_id is not None or self.note:
                raise ValueError("a template goes alone: no body, media_id or note with it")
            return self
        if (self.body is None or not self.body.strip()) and self.media_id is None:
            raise ValueError("give a non-empty body or a media_id")
        if self.note and self.media_id is not None:
            raise ValueError("internal notes are text only")
        return self


class OutboxOut(OutModel):
    """One outbound message's trip through the outbox (what `zapctl outbox list` shows)."""

    id: uuid.UUID
    company_id: uuid.UUID
    session_id: uuid.UUID
    message_id: uuid.UUID
    ticket_id: uuid.UUID | None
    chat_id: uuid.UUID
    to: str  # the chat's WhatsApp id
    preview: str | None  # the first characters of the body
    message_status: MessageStatus
    idempotency_key: str
    state: OutboxState
    attempts: int
    max_attempts: int
    next_attempt_at: datetime
    locked_until: datetime | None
    last_error: str | None
    sent_at: datetime | None
    created_at: datetime
    updated_at: datetime
