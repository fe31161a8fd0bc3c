"""Meta's webhook bodies: signature check, tolerant models, and engine events out of them.

Invariants:
- `signature_ok` compares HMAC-SHA256(app secret, raw body) with the header in constant
  time; anything but `sha256=<64 hex>` is refused.
- The models accept fields they do not know (Meta adds some every version) and never
  fail a whole body over one odd message: an entry that cannot be read becomes an
  UNKNOWN message carrying its raw form, so nothing acknowledged is dropped silently.
- `parse` is pure (no I/O, no clock): the same stored body gives the same events, so a
  body replayed after a crash yields exactly what the first run saw.
- A user is known by phone (`wa_id`) and/or business-scoped user id (`user_id`, e.g.
  `BR.1502…`); one with only the latter gets the chat id `<bsuid>@bsuid`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.enums import MessageStatus, MessageType
from zapd.connectors.events import AckEvent, AnyEngineEvent, MessageEvent

SIGNATURE_HEADER = "X-Hub-Signature-256"
_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")
BSUID = re.compile(r"[A-Z]{2}(?:\.ENT)?\.\d{1,40}")

MEDIA_TYPES: dict[str, MessageType] = {
    "image": MessageType.IMAGE,
    "audio": MessageType.AUDIO,
    "video": MessageType.VIDEO,
    "document": MessageType.DOCUMENT,
    "sticker": MessageType.STICKER,
}
STATUSES: dict[str, MessageStatus] = {
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.READ,
    "played": MessageStatus.PLAYED,
    "failed": MessageStatus.FAILED,
}


def sign(app_secret: str, body: bytes) -> str:
    """Return the X-Hub-Signature-256 value Meta sends with `body`."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def signature_ok(app_secret: str, body: bytes, header: str | None) -> bool:
    """Tell whether `header` is the right signature of `body` (constant-time)."""
    if not header or not app_secret:
        return False
    match = _SIGNATURE.fullmatch(header.strip())
    if match is None:
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, match.group(1).lower())


# --------------------------------------------------------------------------- models


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Profile(_Open):
    """A contact's WhatsApp profile."""

    name: str | None = None
    username: str | None = None


class Contact(_Open):
    """Who wrote: phone (`wa_id`) and/or business-scoped user id (`user_id`)."""

    profile: Profile = Field(default_factory=Profile)
    wa_id: str | None = None
    user_id: str | None = None


class GraphErrorInfo(_Open):
    """An error inside a webhook (failed status, unsupported message)."""

    code: int | None = None
    title: str | None = None
    message: str | None = None
    error_data: dict[str, Any] | None = None

    def describe(self) -> str:
        """Return "CODE title: details" (Meta's code first: it is what people search)."""
        details = (self.error_data or {}).get("details")
        text = self.title or self.message or "error"
        if details and details != text:
            text = f"{text}: {details}"
        return f"{self.code} {text}" if self.code is not None else text


class Context(_Open):
    """What a message answers (a quoted message, a tapped button's message)."""

    id: str | None = None
    forwarded: bool | None = None


class InboundMessage(_Open):
    """One entry of `value.messages`."""

    id: str
    type: str = "unknown"
    timestamp: str | None = None
    from_: str | None = Field(default=None, alias="from")
    from_user_id: str | None = None
    context: Context | None = None
    errors: list[GraphErrorInfo] = Field(default_factory=list)


class Status(_Open):
    """One entry of `value.statuses`."""

    id: str
    status: str
    timestamp: str | None = None
    recipient_id: str | None = None
    recipient_user_id: str | None = None
    errors: list[GraphErrorInfo] = Field(default_factory=list)


class Metadata(_Open):
    """The business number the change is about."""

    display_phone_number: str | None = None
    phone_number_id: str | None = None


class Value(_Open):
    """`entry[].changes[].value`: messages, statuses or errors of one number."""

    messaging_product: str | None = None
    metadata: Metadata = Field(default_factory=Metadata)
    contacts: list[Contact] = Field(default_factory=list)
    messages: list[dict[str, Any]] = Field(default_factory=list)
    statuses: list[dict[str, Any]] = Field(default_factory=list)
    errors: list[GraphErrorInfo] = Field(default_factory=list)


class Change(_Open):
    """One change of an entry."""

    field: str | None = None
    value: Value = Field(default_factory=Value)


class Entry(_Open):
    """One WhatsApp Business Account's changes."""

    id: str | None = None
    changes: list[Change] = Field(default_factory=list)


class Envelope(_Open):
    """A whole webhook body."""

    object: str | None = None
    entry: list[Entry] = Field(default_factory=list)


# --------------------------------------------------------------------------- parsing


def _when(ts: str | None, fallback: datetime) -> datetime:
    try:
        return datetime.fromtimestamp(int(ts or ""), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return fallback


def chat_jid(phone_digits: str | None, bsuid: str | None) -> str:
    """Return zap's chat id for a Cloud API user: phone first, else the BSUID."""
    if phone_digits:
        return f"{phone_digits}@s.whatsapp.net"
    if bsuid:
        return f"{bsuid}@bsuid"
    raise ValueError("a Cloud API user needs a phone number or a business-scoped user id")


def _digits(value: str | None) -> str | None:
    if value and value.lstrip("+").isdigit():
        return value.lstrip("+")
    return None


def _bsuid(value: str | None) -> str | None:
    return value if value and BSUID.fullmatch(value) else None


def _content(msg: InboundMessage, raw: dict[str, Any]) -> dict[str, Any]:
    """Return type, body, media and extra of one message (see the module docstring)."""
    kind = msg.type
    found = raw.get(kind)
    part: dict[str, Any] = found if isinstance(found, dict) else {}
    out: dict[str, Any] = {"type": MessageType.TEXT, "body": None, "extra": {}}
    if kind == "text":
        out["body"] = part.get("body")
    elif kind in MEDIA_TYPES:
        out["type"] = MEDIA_TYPES[kind]
        out["body"] = part.get("caption")
        out["media_mime"] = part.get("mime_type")
        out["media_filename"] = part.get("filename")
        out["extra"] = {
            "media": {
                k: part[k] for k in ("id", "mime_type", "sha256", "voice", "animated") if k in part
            }
        }
    elif kind == "location":
        out["type"] = MessageType.LOCATION
        lines = [str(part[k]) for k in ("name", "address") if part.get(k)]
        if not lines and "latitude" in part and "longitude" in part:
            lines = [f"{part['latitude']},{part['longitude']}"]
        out["body"] = "\n".join(lines) or None
        out["extra"] = {"location": part}
    elif kind == "contacts":
        listed = raw.get("contacts")
        cards: list[Any] = listed if isinstance(listed, list) else []
        names = []
        for card in cards:
            if not isinstance(card, dict):
                continue
            name = (card.get("name") or {}).get("formatted_name")
            phones = [p.get("phone") for p in card.get("phones", []) if isinstance(p, dict)]
            names.append(" ".join(x for x in [name, *phones] if x))
        out["type"] = MessageType.CONTACT
        out["body"] = "\n".join(n for n in names if n) or None
        out["extra"] = {"contacts": cards}
    elif kind == "interactive":
        chosen = part.get(str(part.get("type")))
        reply: dict[str, Any] = chosen if isinstance(chosen, dict) else {}
        out["body"] = reply.get("title") or reply.get("body")
        out["reply_id"] = reply.get("id")
        out["extra"] = {"interactive": part}
    elif kind == "button":  # a template's quick-reply button
        out["body"] = part.get("text")
        out["reply_id"] = part.get("payload")
        out["extra"] = {"button": part}
    elif kind == "reaction":
        emoji = part.get("emoji") or None
        out["type"] = MessageType.REACTION
        out["body"] = emoji
        out["quoted"] = part.get("message_id")
        out["extra"] = {"reaction": {"message_id": part.get("message_id"), "emoji": emoji}}
        if emoji is None:
            out["extra"]["reaction"]["removed"] = True
    else:  # unsupported, or a type zap does not read yet (order, system, request_welcome...)
        out["type"] = MessageType.UNKNOWN
        out["extra"] = {
            "cloud_type": kind,
            "errors": [e.model_dump(exclude_none=True) for e in msg.errors],
            "raw": part or None,
        }
        if msg.errors:
            out["body"] = msg.errors[0].describe()
    return out


def _message_event(
    session_id: uuid.UUID,
    raw: dict[str, Any],
    contacts: list[Contact],
    received: datetime,
) -> MessageEvent | None:
    try:
        msg = InboundMessage.model_validate(raw)
    except ValidationError:
        return None  # no id: nothing to dedupe or answer on
    phone = _digits(msg.from_)
    bsuid = _bsuid(msg.from_user_id) or _bsuid(msg.from_)
    contact = next(
        (
            c
            for c in contacts
            if (phone and _digits(c.wa_id) == phone) or (bsuid and c.user_id == bsuid)
        ),
        contacts[0] if len(contacts) == 1 else None,
    )
    if contact is not None:
        phone = phone or _digits(contact.wa_id)
        bsuid = bsuid or _bsuid(contact.user_id)
    try:
        jid = chat_jid(phone, bsuid)
    except ValueError:
        return None
    content = _content(msg, raw)
    quoted = content.pop("quoted", None) or (msg.context.id if msg.context else None)
    if msg.context is not None and msg.context.forwarded:
        content["extra"]["forwarded"] = True
    return MessageEvent(
        session_id=session_id,
        at=received,
        wa_message_id=msg.id,
        chat_jid=jid,
        sender_jid=jid,
        sender_phone=f"+{phone}" if phone else None,
        sender_bsuid=bsuid,
        push_name=contact.profile.name if contact else None,
        type=content["type"],
        body=content["body"],
        media_mime=content.get("media_mime"),
        media_filename=content.get("media_filename"),
        quoted_wa_message_id=quoted,
        timestamp=_when(msg.timestamp, received),
        extra=content["extra"],
        reply_id=content.get("reply_id"),
    )


def _ack_event(session_id: uuid.UUID, raw: dict[str, Any], received: datetime) -> AckEvent | None:
    try:
        st = Status.model_validate(raw)
    except ValidationError:
        return None
    status = STATUSES.get(st.status)
    if status is None:
        return None  # "deleted", "warning"...: nothing a delivery status means
    error = "; ".join(e.describe() for e in st.errors) or None
    return AckEvent(
        session_id=session_id,
        at=_when(st.timestamp, received),
        wa_message_id=st.id,
        status=status,
        error=error[:2000] if error else None,
    )


def parse(body: dict[str, Any], session_id: uuid.UUID, received: datetime) -> list[AnyEngineEvent]:
    """Turn one webhook body into engine events: messages, then statuses.

    `contacts` are not events of their own: each message carries its sender's phone,
    business-scoped id and profile name.
    """
    envelope = Envelope.model_validate(body)
    out: list[AnyEngineEvent] = []
    for entry in envelope.entry:
        for change in entry.changes:
            value = change.value
            for raw in value.messages:
                event = _message_event(session_id, raw, value.contacts, received)
                if event is not None:
                    out.append(event)
            for raw in value.statuses:
                ack = _ack_event(session_id, raw, received)
                if ack is not None:
                    out.append(ack)
    return out


def callback_status(body: dict[str, Any], callback_data: str) -> str | None:
    """Return the message id of a status in `body` carrying `biz_opaque_callback_data`.

    Pure and lenient: a body that is not Meta's shape simply has no such status.
    """
    try:
        envelope = Envelope.model_validate(body)
    except ValidationError:
        return None
    for entry in envelope.entry:
        for change in entry.changes:
            for raw in change.value.statuses:
                if (
                    isinstance(raw, dict)
                    and raw.get("biz_opaque_callback_data") == callback_data
                    and isinstance(raw.get("id"), str)
                ):
                    return str(raw["id"])
    return None


def media_ids(events: list[AnyEngineEvent]) -> list[tuple[int, str]]:
    """Return (index, Meta media id) of the events whose file is still to be downloaded."""
    found = []
    for i, ev in enumerate(events):
        if isinstance(ev, MessageEvent) and ev.media_id is None:
            media = ev.extra.get("media")
            if isinstance(media, dict) and isinstance(media.get("id"), str):
                found.append((i, media["id"]))
    return found
