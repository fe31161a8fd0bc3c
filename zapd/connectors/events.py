"""Engine-neutral events: what every connector emits, whatever WhatsApp flavour it speaks.

They are pydantic models so the inbound pipeline can store them raw (webhook_events)
and replay them after a restart exactly as they arrived.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from shared.enums import MessageStatus, MessageType, SessionStatus


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    session_id: uuid.UUID
    at: datetime


class QrEvent(_Event):
    """A new QR code to link the session (rotates every ~20 s until scanned)."""

    kind: Literal["qr"] = "qr"
    qr: str
    expires_at: datetime


class StatusEvent(_Event):
    """The session's connection state changed."""

    kind: Literal["status"] = "status"
    status: SessionStatus
    reason: str | None = None
    phone: str | None = None  # E.164 of the linked number, once known


class MessageEvent(_Event):
    """A message seen on the session: from a customer, or sent from the phone itself."""

    kind: Literal["message"] = "message"
    wa_message_id: str
    chat_jid: str  # 5511...@s.whatsapp.net, ...@lid, ...@g.us
    sender_jid: str
    sender_lid: str | None = None
    sender_phone: str | None = None  # when the engine knows the phone behind a LID
    sender_bsuid: str | None = None  # Meta's business-scoped user id (Cloud API)
    push_name: str | None = None
    from_me: bool = False
    type: MessageType = MessageType.TEXT
    body: str | None = None
    media_url: str | None = None
    media_mime: str | None = None
    media_filename: str | None = None
    quoted_wa_message_id: str | None = None
    timestamp: datetime
    # What the engine's payload holds beyond body and media: location, contact cards,
    # the reply id of a tapped button, an unsupported type's error... (kept on the message)
    extra: dict[str, Any] = Field(default_factory=dict)
    # The answer a tapped button or list row stands for (given to the greeting flow).
    reply_id: str | None = None
    media_id: uuid.UUID | None = None  # the media row once the engine downloaded the file


class AckEvent(_Event):
    """A delivery status for a message the session sent."""

    kind: Literal["ack"] = "ack"
    wa_message_id: str
    status: MessageStatus
    error: str | None = None


class ContactEvent(_Event):
    """What the engine learned about a contact (name, LID ↔ phone mapping)."""

    kind: Literal["contact"] = "contact"
    jid: str
    lid: str | None = None
    phone: str | None = None
    name: str | None = None
    bsuid: str | None = None


class TypingEvent(_Event):
    """A customer started or stopped typing (or recording a voice note) in a chat.

    Ephemeral: never stored nor replayed (the session manager hands it to the realtime
    stream at once); an engine that cannot see typing (the Cloud API) never emits it.
    """

    kind: Literal["typing"] = "typing"
    chat_jid: str
    typing: bool
    recording: bool = False  # a voice note rather than text


EngineEvent = Annotated[
    QrEvent | StatusEvent | MessageEvent | AckEvent | ContactEvent, Field(discriminator="kind")
]
ENGINE_EVENT = TypeAdapter(EngineEvent)


# What a connector may hand its sink. `TypingEvent` is not an `EngineEvent`: it is never
# stored, so it cannot be loaded back.
AnyEngineEvent = QrEvent | StatusEvent | MessageEvent | AckEvent | ContactEvent | TypingEvent


def dump_event(event: AnyEngineEvent) -> dict[str, Any]:
    """Return the JSON-safe form stored in webhook_events.payload."""
    return event.model_dump(mode="json")


def load_event(payload: dict[str, Any]) -> AnyEngineEvent:
    """Rebuild an event from its stored form."""
    return ENGINE_EVENT.validate_python(payload)
