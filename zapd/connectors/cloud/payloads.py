"""Outbound messages as Graph `/messages` bodies, within the limits Meta sets.

Invariants:
- `to_jid` decides the addressee: `<digits>@s.whatsapp.net` → `to`, `<bsuid>@bsuid` →
  `recipient` (a user known only by business-scoped id).
- Interactive messages are built only when they fit (`list_fits`, `buttons_fit`); the
  caller keeps the plain-text form in `body`, so an engine without them — or a list
  that does not fit — still says the same thing as text.
- Every send carries its outbox idempotency key as `biz_opaque_callback_data` (Meta
  echoes it in the message's status webhooks).
"""

from __future__ import annotations

from typing import Any

from shared.enums import MessageType
from zapd.connectors.base import OutboundMessage

TEXT_MAX = 4096
INTERACTIVE_BODY_MAX = 1024
BUTTONS_MAX = 3
BUTTON_TITLE_MAX = 20
LIST_ROWS_MAX = 10
ROW_TITLE_MAX = 24
ROW_DESCRIPTION_MAX = 72
LIST_BUTTON_MAX = 20
REPLY_ID_MAX = 200
CALLBACK_DATA_MAX = 512  # biz_opaque_callback_data, Meta's limit
CAPTION_TYPES = {MessageType.IMAGE, MessageType.VIDEO, MessageType.DOCUMENT}
MEDIA_KINDS = {
    MessageType.IMAGE: "image",
    MessageType.AUDIO: "audio",
    MessageType.VIDEO: "video",
    MessageType.DOCUMENT: "document",
    MessageType.STICKER: "sticker",
}


def list_fits(body: str, button: str, rows: list[dict[str, str]]) -> bool:
    """Tell whether a list message is within Meta's limits."""
    return (
        0 < len(rows) <= LIST_ROWS_MAX
        and 0 < len(body) <= INTERACTIVE_BODY_MAX
        and 0 < len(button) <= LIST_BUTTON_MAX
        and all(0 < len(r["title"]) <= ROW_TITLE_MAX for r in rows)
        and all(len(r.get("description") or "") <= ROW_DESCRIPTION_MAX for r in rows)
        and all(0 < len(r["id"]) <= REPLY_ID_MAX for r in rows)
        and len({r["id"] for r in rows}) == len(rows)
    )


def buttons_fit(body: str, buttons: list[dict[str, str]]) -> bool:
    """Tell whether a reply-buttons message is within Meta's limits."""
    return (
        0 < len(buttons) <= BUTTONS_MAX
        and 0 < len(body) <= INTERACTIVE_BODY_MAX
        and all(0 < len(b["title"]) <= BUTTON_TITLE_MAX for b in buttons)
        and all(0 < len(b["id"]) <= REPLY_ID_MAX for b in buttons)
        and len({b["title"] for b in buttons}) == len(buttons)
    )


def recipient(to_jid: str) -> dict[str, str]:
    """Return the addressee fields of a send."""
    user, _, server = to_jid.partition("@")
    if server == "bsuid":
        return {"recipient": user}
    return {"to": user.split(":")[0]}


def _interactive(spec: dict[str, Any]) -> dict[str, Any]:
    if "list" in spec:
        lst = spec["list"]
        rows = [
            {k: v for k, v in row.items() if k in ("id", "title", "description") and v}
            for row in lst["rows"]
        ]
        section: dict[str, Any] = {"rows": rows}
        if lst.get("section"):
            section["title"] = str(lst["section"])[:ROW_TITLE_MAX]
        return {
            "type": "list",
            "body": {"text": lst["body"]},
            "action": {"button": lst["button"], "sections": [section]},
        }
    btn = spec["buttons"]
    return {
        "type": "button",
        "body": {"text": btn["body"]},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": b["id"], "title": b["title"]}}
                for b in btn["buttons"]
            ]
        },
    }


def _template(spec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": spec["name"],
        "language": {"code": spec.get("language") or "pt_BR"},
    }
    params = spec.get("parameters") or []
    if params:
        out["components"] = [
            {"type": "body", "parameters": [{"type": "text", "text": str(p)} for p in params]}
        ]
    return out


def build(message: OutboundMessage, media_id: str | None = None) -> dict[str, Any]:
    """Return the `/messages` body of an outbound message (`media_id`: uploaded first)."""
    payload: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        **recipient(message.to_jid),
    }
    if message.idempotency_key and len(message.idempotency_key) <= CALLBACK_DATA_MAX:
        # Echoed by Meta in this message's status webhooks: how a send in doubt after
        # a crash is recognised (zapd.connectors.cloud.connector).
        payload["biz_opaque_callback_data"] = message.idempotency_key
    if message.quoted_wa_message_id:
        payload["context"] = {"message_id": message.quoted_wa_message_id}
    if message.template is not None:
        payload["type"] = "template"
        payload["template"] = _template(message.template)
    elif media_id is not None and message.type in MEDIA_KINDS:
        kind = MEDIA_KINDS[message.type]
        media: dict[str, Any] = {"id": media_id}
        if message.body and message.type in CAPTION_TYPES:
            media["caption"] = message.body
        if message.type is MessageType.DOCUMENT and message.media_filename:
            media["filename"] = message.media_filename
        payload["type"] = kind
        payload[kind] = media
    elif message.interactive is not None:
        payload["type"] = "interactive"
        payload["interactive"] = _interactive(message.interactive)
    else:
        payload["type"] = "text"
        payload["text"] = {"body": (message.body or "")[:TEXT_MAX], "preview_url": False}
    return payload
