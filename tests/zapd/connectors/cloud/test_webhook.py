"""Meta's webhook bodies: signatures, and every message/status shape into engine events."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from shared.enums import MessageStatus, MessageType
from tests.fakes.graph_api import FakeGraph, contact, inbound, meta_error, status
from zapd.connectors.cloud.webhook import media_ids, parse, sign, signature_ok
from zapd.connectors.events import AckEvent, MessageEvent, dump_event, load_event

SID = uuid.uuid4()
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
FAKE = FakeGraph()


def one(msg: dict, contacts: list | None = None) -> MessageEvent:
    events = parse(
        FAKE.webhook(messages=[msg], contacts=contacts or [contact("5511987654321")]), SID, NOW
    )
    (event,) = events
    assert isinstance(event, MessageEvent)
    # What the pipeline stores comes back identical (replay after a crash).
    assert load_event(json.loads(json.dumps(dump_event(event)))) == event
    return event


def test_signature_checks_the_raw_body_in_constant_time_shape() -> None:
    body = b'{"object":"whatsapp_business_account","entry":[]}'
    good = sign("s3cret", body)
    assert good.startswith("sha256=") and len(good) == 71
    assert signature_ok("s3cret", body, good)
    assert signature_ok("s3cret", body, good.upper().replace("SHA256=", "sha256="))
    assert not signature_ok("s3cret", body + b" ", good)  # re-serialised body: refused
    assert not signature_ok("other", body, good)
    assert not signature_ok("s3cret", body, None)
    assert not signature_ok("s3cret", body, "")
    assert not signature_ok("s3cret", body, good.removeprefix("sha256="))
    assert not signature_ok("s3cret", body, "sha1=" + good[7:])
    assert not signature_ok("", body, sign("", body))  # no app secret: nothing is valid


@pytest.mark.parametrize(
    ("kind", "content", "mtype", "body"),
    [
        ("text", {"body": "Olá, quero um exame"}, MessageType.TEXT, "Olá, quero um exame"),
        (
            "image",
            {"id": "1111", "mime_type": "image/jpeg", "sha256": "ab", "caption": "a foto"},
            MessageType.IMAGE,
            "a foto",
        ),
        (
            "audio",
            {"id": "2222", "mime_type": "audio/ogg; codecs=opus", "voice": True},
            MessageType.AUDIO,
            None,
        ),
        ("video", {"id": "3333", "mime_type": "video/mp4"}, MessageType.VIDEO, None),
        (
            "document",
            {
                "id": "4444",
                "mime_type": "application/pdf",
                "filename": "laudo.pdf",
                "caption": "laudo",
            },
            MessageType.DOCUMENT,
            "laudo",
        ),
        (
            "sticker",
            {"id": "5555", "mime_type": "image/webp", "animated": False},
            MessageType.STICKER,
            None,
        ),
        (
            "location",
            {
                "latitude": -23.56,
                "longitude": -46.65,
                "name": "Clínica",
                "address": "Av. Paulista, 1000",
            },
            MessageType.LOCATION,
            "Clínica\nAv. Paulista, 1000",
        ),
        ("location", {"latitude": -23.5, "longitude": -46.6}, MessageType.LOCATION, "-23.5,-46.6"),
    ],
)
def test_content_types(kind: str, content: dict, mtype: MessageType, body: str | None) -> None:
    ev = one(inbound(kind, content))
    assert ev.type is mtype
    assert ev.body == body
    assert ev.chat_jid == ev.sender_jid == "5511987654321@s.whatsapp.net"
    assert ev.sender_phone == "+5511987654321"
    assert ev.push_name == "Maria Souza"
    if "id" in content:
        assert ev.extra["media"]["id"] == content["id"]
        assert ev.media_mime == content["mime_type"]
        assert media_ids([ev]) == [(0, content["id"])]
    if kind == "document":
        assert ev.media_filename == "laudo.pdf"
    if kind == "location":
        assert ev.extra["location"]["latitude"] == content["latitude"]


def test_contacts_card() -> None:
    cards = [
        {
            "name": {"formatted_name": "João Lima", "first_name": "João"},
            "phones": [{"phone": "+55 11 91234-5678", "wa_id": "5511912345678"}],
        }
    ]
    ev = one(inbound("contacts", None) | {"contacts": cards})
    assert ev.type is MessageType.CONTACT
    assert ev.body == "João Lima +55 11 91234-5678"
    assert ev.extra["contacts"] == cards


def test_interactive_replies_carry_their_ids() -> None:
    ev = one(
        inbound(
            "interactive",
            {
                "type": "list_reply",
                "list_reply": {"id": "2", "title": "Comercial", "description": "Vendas"},
            },
            context={"from": "551140001000", "id": "wamid.MENU"},
        )
    )
    assert (ev.type, ev.body, ev.reply_id) == (MessageType.TEXT, "Comercial", "2")
    assert ev.quoted_wa_message_id == "wamid.MENU"
    ev = one(
        inbound(
            "interactive", {"type": "button_reply", "button_reply": {"id": "1", "title": "Sim"}}
        )
    )
    assert (ev.body, ev.reply_id) == ("Sim", "1")
    # A template's quick-reply button: type "button", payload as the answer.
    ev = one(inbound("button", {"payload": "CONTINUAR", "text": "Continuar atendimento"}))
    assert (ev.type, ev.body, ev.reply_id) == (
        MessageType.TEXT,
        "Continuar atendimento",
        "CONTINUAR",
    )


def test_reactions_and_their_removal() -> None:
    ev = one(inbound("reaction", {"message_id": "wamid.OUT1", "emoji": "👍"}))
    assert (ev.type, ev.body, ev.quoted_wa_message_id) == (MessageType.REACTION, "👍", "wamid.OUT1")
    ev = one(inbound("reaction", {"message_id": "wamid.OUT1"}))
    assert (ev.type, ev.body) == (MessageType.REACTION, None)
    assert ev.extra["reaction"] == {"message_id": "wamid.OUT1", "emoji": None, "removed": True}


def test_unsupported_and_unknown_types_are_kept_not_dropped() -> None:
    ev = one(inbound("unsupported", None, errors=[meta_error(131051)]))
    assert ev.type is MessageType.UNKNOWN
    assert ev.body is not None and ev.body.startswith("131051")
    assert ev.extra["errors"][0]["code"] == 131051
    ev = one(inbound("order", {"catalog_id": "9", "product_items": []}))
    assert ev.type is MessageType.UNKNOWN and ev.extra["cloud_type"] == "order"
    assert ev.extra["raw"] == {"catalog_id": "9", "product_items": []}


def test_unknown_fields_are_tolerated() -> None:
    msg = inbound("text", {"body": "oi", "new_field": 1}) | {"brand_new": {"x": 1}}
    doc = FAKE.webhook(
        messages=[msg], contacts=[contact("5511987654321") | {"identity_key_hash": "h"}]
    )
    doc["entry"][0]["changes"][0]["value"]["something_else"] = []
    doc["entirely_new"] = True
    (ev,) = parse(doc, SID, NOW)
    assert isinstance(ev, MessageEvent) and ev.body == "oi"


def test_business_scoped_user_without_phone() -> None:
    ev = one(
        inbound("text", {"body": "oi"}, sender=None, user_id="BR.15028374650193"),
        contacts=[contact(None, "Ana", user_id="BR.15028374650193")],
    )
    assert ev.chat_jid == "BR.15028374650193@bsuid"
    assert ev.sender_phone is None and ev.sender_bsuid == "BR.15028374650193"
    assert ev.push_name == "Ana"
    # Both ids known: the phone names the chat, the BSUID rides along.
    ev = one(
        inbound("text", {"body": "oi"}),
        contacts=[contact("5511987654321", user_id="BR.15028374650193")],
    )
    assert ev.chat_jid == "5511987654321@s.whatsapp.net"
    assert ev.sender_bsuid == "BR.15028374650193"


def test_statuses_with_and_without_errors() -> None:
    doc = FAKE.webhook(
        statuses=[
            status("wamid.A", "sent", ts=1_700_000_000),
            status("wamid.A", "delivered"),
            status("wamid.A", "read"),
            status("wamid.B", "played"),
            status("wamid.C", "failed", errors=[meta_error(131047)]),
            status("wamid.D", "deleted"),  # not a delivery status: ignored
        ]
    )
    acks = parse(doc, SID, NOW)
    assert all(isinstance(a, AckEvent) for a in acks)
    assert [(a.wa_message_id, a.status) for a in acks] == [  # type: ignore[union-attr]
        ("wamid.A", MessageStatus.SENT),
        ("wamid.A", MessageStatus.DELIVERED),
        ("wamid.A", MessageStatus.READ),
        ("wamid.B", MessageStatus.PLAYED),
        ("wamid.C", MessageStatus.FAILED),
    ]
    assert acks[0].at == datetime.fromtimestamp(1_700_000_000, UTC)
    failed = acks[-1]
    assert isinstance(failed, AckEvent) and failed.error is not None
    assert failed.error.startswith("131047 Re-engagement message")
    assert "24 hours" in failed.error


def test_malformed_entries_are_skipped_not_fatal() -> None:
    doc = FAKE.webhook(messages=[{"type": "text"}, inbound("text", {"body": "ok"})])
    (ev,) = parse(doc, SID, NOW)
    assert isinstance(ev, MessageEvent) and ev.body == "ok"
    assert parse({"object": "whatsapp_business_account"}, SID, NOW) == []
    with pytest.raises(ValueError):
        parse({"entry": "not a list"}, SID, NOW)
