"""The Cloud API engine end to end: a real zapd on loopback, Meta played by the fake Graph API.

Both backends. Webhooks are signed (or forged) by the fake and posted over real HTTP;
sends go from zapd's outbox to the fake over real HTTP.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import time
import uuid
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.enums import (
    ClientIdentityKind,
    FlowState,
    MessageDirection,
    MessageStatus,
    MessageType,
    OutboxState,
    SessionStatus,
)
from tests.fakes.graph_api import FakeGraph, contact, inbound, meta_error, status
from tests.zapd.api.conftest import Live, Tenant, serving
from tests.zapd.api.conftest import test_settings as daemon_settings
from zapd.db.models import (
    AuditLog,
    Client,
    ClientIdentity,
    Media,
    Message,
    Outbox,
    PendingAck,
    Ticket,
    WaSession,
    WebhookEvent,
)
from zapd.services.sessions.cloud_config import seal_stored

PHONE = "5511987654321"
BSUID = "BR.15028374650193"
VERIFY = "verify-me-0123456789"


@pytest.fixture
async def fake() -> AsyncIterator[FakeGraph]:
    graph = await FakeGraph().start()
    try:
        yield graph
    finally:
        await graph.stop()


@pytest.fixture
async def cloud_live(engine: AsyncEngine, backend: Any, tmp_path: Path) -> AsyncIterator[Live]:
    """A zapd whose outbox retries fast (the fake answers at once)."""
    settings = daemon_settings(
        tmp_path, outbox_backoff_base=0.05, outbox_backoff_cap=0.2, outbox_poll_interval=0.05
    )
    async with serving(engine, backend, settings) as lv:
        yield lv


async def wait_for(predicate: Any, within: float = 15.0) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def cloud_config(fake: FakeGraph) -> dict[str, Any]:
    return {
        "phone_number_id": fake.phone_number_id,
        "business_account_id": fake.waba_id,
        "access_token": fake.access_token,
        "app_secret": fake.app_secret,
        "verify_token": VERIFY,
        "base_url": fake.url,
        "api_version": "v26.0",
    }


async def cloud_session(live: Live, t: Tenant, fake: FakeGraph, *, start: bool = True) -> str:
    r = await t.admin.post(
        "/api/v1/sessions", json={"name": "Meta", "engine": 2, "config": cloud_config(fake)}
    )
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    if start:
        assert (await t.admin.post(f"/api/v1/sessions/{sid}/start")).status_code == 202

        async def connected() -> bool:
            s = (await t.admin.get(f"/api/v1/sessions/{sid}")).json()
            return s["status"] == SessionStatus.CONNECTED

        await wait_for(connected)
    return sid


def hook_url(live: Live, sid: str) -> str:
    return f"{live.url}/webhooks/cloud/{sid}"


async def post(live: Live, fake: FakeGraph, sid: str, doc: Any, **kw: Any) -> httpx.Response:
    return await fake.deliver(hook_url(live, sid), doc, **kw)


async def count(live: Live, model: Any, *where: Any) -> int:
    async with live.kernel.read() as db:
        return int(await db.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def settled(live: Live) -> None:
    """Wait until every stored event is processed."""

    async def done() -> bool:
        return await count(live, WebhookEvent, WebhookEvent.state == 0) == 0

    await wait_for(done)


async def says(
    live: Live, fake: FakeGraph, sid: str, text: str, *, sender: str | None = PHONE, **kw: Any
) -> str:
    user_id = kw.pop("user_id", None)
    msg = inbound("text", {"body": text}, sender=sender, user_id=user_id, **kw)
    doc = fake.webhook(messages=[msg], contacts=[contact(sender, "Maria Souza", user_id)])
    r = await post(live, fake, sid, doc)
    assert r.status_code == 200, r.text
    await settled(live)
    return str(msg["id"])


async def menu_sent(fake: FakeGraph, n: int = 1) -> dict[str, Any]:
    async def sent() -> Any:
        lists = [s for s in fake.sent if s.get("type") == "interactive"]
        return lists[n - 1] if len(lists) >= n else None

    return await wait_for(sent)


# --------------------------------------------------------------------------- webhooks


async def test_verification_and_refused_webhooks_store_nothing(
    cloud_live: Live, fake: FakeGraph
) -> None:
    live = cloud_live
    t = await live.tenant()
    sid = await cloud_session(live, t, fake, start=False)
    anon = live.client()
    params = {"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1158201444"}
    r = await anon.get(f"/webhooks/cloud/{sid}", params=params)
    assert (r.status_code, r.text) == (200, "1158201444")
    for bad in ({"hub.verify_token": "wrong"}, {"hub.mode": "unsubscribe"}):
        r = await anon.get(f"/webhooks/cloud/{sid}", params=params | bad)
        assert r.status_code == 401 and r.json()["error"] == "ERR_UNAUTHORIZED"
    r = await anon.get(f"/webhooks/cloud/{uuid.uuid4()}", params=params)
    assert r.status_code == 404

    doc = fake.webhook(messages=[inbound("text", {"body": "oi"})], contacts=[contact(PHONE)])
    forged = fake.signed(json.dumps(doc).encode(), secret="not-the-app-secret")
    for signature in (forged, None, "sha256=zz", "garbage"):
        r = await post(live, fake, sid, doc, signature=signature)
        assert r.status_code == 401, r.text
        assert r.json()["error"] == "ERR_UNAUTHORIZED"
    r = await post(live, fake, sid, b"x" * (1 << 20 + 1))  # over the body limit
    assert r.status_code == 413
    r = await post(live, fake, sid, b"not json")
    assert r.status_code == 422
    r = await post(live, fake, str(uuid.uuid4()), doc)
    assert r.status_code == 404
    await asyncio.sleep(0.2)
    assert await count(live, WebhookEvent) == 0
    assert await count(live, Message) == 0


async def test_redelivered_webhook_is_stored_once(cloud_live: Live, fake: FakeGraph) -> None:
    live = cloud_live
    t = await live.tenant()
    sid = await cloud_session(live, t, fake)
    msg = inbound("text", {"body": "Oi"}, wamid="wamid.DUP1")
    doc = fake.webhook(messages=[msg], contacts=[contact(PHONE)])
    first = await post(live, fake, sid, doc)
    again = await post(live, fake, sid, doc)
    assert first.json() == {"status": "stored"} and again.json() == {"status": "duplicate"}
    # Meta may re-serialise a redelivery: another raw row, still one message.
    await post(live, fake, sid, json.dumps(doc, indent=1).encode())
    await settled(live)
    assert await count(live, WebhookEvent, WebhookEvent.event_type == "cloud.webhook") == 2
    assert await count(live, Message, Message.direction == MessageDirection.INBOUND) == 1
    assert await count(live, Ticket) == 1


async def test_every_inbound_type_lands_with_its_type_and_body(
    cloud_live: Live, fake: FakeGraph
) -> None:
    live = cloud_live
    t = await live.tenant()
    sid = await cloud_session(live, t, fake)
    png = _png()
    media_id = fake.add_media(png, "image/png")
    cards = [{"name": {"formatted_name": "João Lima"}, "phones": [{"phone": "+55 11 91234-5678"}]}]
    cases: list[tuple[dict[str, Any], MessageType, str | None]] = [
        (inbound("text", {"body": "Olá"}), MessageType.TEXT, "Olá"),
        (
            inbound("image", {"id": media_id, "mime_type": "image/png", "caption": "foto"}),
            MessageType.IMAGE,
            "foto",
        ),
        (inbound("audio", {"id": "77001", "mime_type": "audio/ogg"}), MessageType.AUDIO, None),
        (inbound("video", {"id": "77002", "mime_type": "video/mp4"}), MessageType.VIDEO, None),
        (
            inbound(
                "document", {"id": "77003", "mime_type": "application/pdf", "filename": "a.pdf"}
            ),
            MessageType.DOCUMENT,
            None,
        ),
        (inbound("sticker", {"id": "77004", "mime_type": "image/webp"}), MessageType.STICKER, None),
        (
            inbound("location", {"latitude": -23.5, "longitude": -46.6, "name": "Clínica"}),
            MessageType.LOCATION,
            "Clínica",
        ),
        (
            inbound("contacts", None) | {"contacts": cards},
            MessageType.CONTACT,
            "João Lima +55 11 91234-5678",
        ),
        (
            inbound(
                "interactive", {"type": "button_reply", "button_reply": {"id": "x", "title": "Ok"}}
            ),
            MessageType.TEXT,
            "Ok",
        ),
        (inbound("button", {"payload": "P", "text": "Continuar"}), MessageType.TEXT, "Continuar"),
        (inbound("reaction", {"message_id": "wamid.X", "emoji": "❤️"}), MessageType.REACTION, "❤️"),
        (inbound("reaction", {"message_id": "wamid.X"}), MessageType.REACTION, None),
        (inbound("unsupported", None, errors=[meta_error(131051)]), MessageType.UNKNOWN, None),
    ]
    doc = fake.webhook(messages=[c[0] for c in cases], contacts=[contact(PHONE)])
    assert (await post(live, fake, sid, doc)).status_code == 200
    await settled(live)
    async with live.kernel.read() as db:
        rows = {
            m.wa_message_id: m
            for m in await db.scalars(select(Message).where(Message.direction == 0))
        }
        assert len(rows) == len(cases)
        for raw, mtype, body in cases:
            got = rows[raw["id"]]
            assert got.type is mtype, raw["type"]
            if mtype is not MessageType.UNKNOWN:
                assert got.body == body, raw["type"]
        unsupported = rows[cases[-1][0]["id"]]
        assert unsupported.body is not None and unsupported.body.startswith("131051")
        image = rows[cases[1][0]["id"]]
        assert image.media_id is not None  # downloaded with the token into the store
        media = await db.get(Media, image.media_id)
        assert media is not None and media.mime == "image/png" and media.size == len(png)
        audio = rows[cases[2][0]["id"]]
        assert audio.media_id is None and "error" in audio.extra["media"]  # fake has no file
        assert rows[cases[6][0]["id"]].extra["location"]["latitude"] == -23.5
        assert rows[cases[-2][0]["id"]].extra["reaction"]["removed"] is True


# --------------------------------------------------------------------------- flow


async def test_menu_goes_as_a_list_and_a_list_reply_routes(
    cloud_live: Live, fake: FakeGraph
) -> None:
    live = cloud_live
    t = await live.tenant()
    sid = await cloud_session(live, t, fake)
    await says(live, fake, sid, "Oi, bom dia")
    menu = await menu_sent(fake)
    assert menu["to"] == PHONE and menu["interactive"]["type"] == "list"
    rows = menu["interactive"]["action"]["sections"][0]["rows"]
    assert [(r["id"], r["title"]) for r in rows] == [("1", "Laboratório"), ("2", "Comercial")]
    assert menu["interactive"]["action"]["button"] == "Ver setores"
    assert menu["interactive"]["body"]["text"].startswith("Olá, Maria!")
    reply = inbound(
        "interactive",
        {"type": "list_reply", "list_reply": {"id": "2", "title": "Comercial"}},
        context={"from": "551140001000", "id": "wamid.menu"},
    )
    await post(live, fake, sid, fake.webhook(messages=[reply], contacts=[contact(PHONE)]))
    await settled(live)
    async with live.kernel.read() as db:
        ticket = await db.scalar(select(Ticket))
        assert ticket is not None and ticket.department_id == t.sales_id
        assert ticket.flow_state is FlowState.ROUTED

    async def queued_text() -> Any:
        return [s for s in fake.sent if s.get("type") == "text"]

    (queued,) = await wait_for(queued_text)
    assert "Comercial" in queued["text"]["body"]


async def test_menu_that_does_not_fit_goes_as_text(cloud_live: Live, fake: FakeGraph) -> None:
    live = cloud_live
    t = await live.tenant()
    async with live.kernel.tx() as db:
        from zapd.db.models import Department

        lab = await db.get(Department, t.lab_id)
        assert lab is not None
        lab.name = "Laboratório de Análises Clínicas"  # 32 characters: over a row title
    sid = await cloud_session(live, t, fake)
    await says(live, fake, sid, "Oi")

    async def sent() -> Any:
        return fake.sent

    (menu,) = await wait_for(sent)
    assert menu["type"] == "text" and "*2* - Comercial" in menu["text"]["body"]


async def test_statuses_out_of_order_and_before_the_send_commits(
    cloud_live: Live, fake: FakeGraph
) -> None:
    live = cloud_live
    t = await live.tenant()
    sid = await cloud_session(live, t, fake)
    fake.next_wamids.append("wamid.MENU-1")
    await says(live, fake, sid, "Oi")
    await menu_sent(fake)

    async def sent_menu() -> Any:
        async with live.kernel.read() as db:
            return await db.scalar(
                select(Message).where(
                    Message.wa_message_id == "wamid.MENU-1", Message.status == MessageStatus.SENT
                )
            )

    await wait_for(sent_menu)
    for state in ("read", "sent", "delivered"):  # Meta's order is not guaranteed
        await post(live, fake, sid, fake.webhook(statuses=[status("wamid.MENU-1", state)]))
    await settled(live)
    async with live.kernel.read() as db:
        menu = await db.scalar(select(Message).where(Message.wa_message_id == "wamid.MENU-1"))
        assert menu is not None and menu.status is MessageStatus.READ

    # A status for a message whose send is not committed yet is kept, then applied.
    fake.next_wamids.append("wamid.EARLY-1")
    await post(live, fake, sid, fake.webhook(statuses=[status("wamid.EARLY-1", "delivered")]))
    await settled(live)
    assert await count(live, PendingAck, PendingAck.wa_message_id == "wamid.EARLY-1") == 1
    ticket = (await t.supervisor.get("/api/v1/tickets")).json()["items"][0]
    r = await t.supervisor.post(
        "/api/v1/messages", json={"ticket_id": ticket["id"], "body": "Olá!"}
    )
    assert r.status_code == 201, r.text

    async def delivered() -> Any:
        async with live.kernel.read() as db:
            m = await db.scalar(select(Message).where(Message.wa_message_id == "wamid.EARLY-1"))
            return m is not None and m.status is MessageStatus.DELIVERED

    await wait_for(delivered)


# --------------------------------------------------------------------------- window


async def test_window_refuses_free_text_and_allows_a_template(
    cloud_live: Live, fake: FakeGraph
) -> None:
    live = cloud_live
    t = await live.tenant()
    sid = await cloud_session(live, t, fake)
    await says(live, fake, sid, "Oi", ts=int(time.time()) - 25 * 3600)  # wrote 25 h ago
    await menu_sent(fake)
    sent_before = len(fake.sent)
    ticket = (await t.supervisor.get("/api/v1/tickets")).json()["items"][0]
    shown = (await t.supervisor.get(f"/api/v1/tickets/{ticket['id']}")).json()
    assert shown["service_window"]["open"] is False
    r = await t.supervisor.post("/api/v1/messages", json={"ticket_id": ticket["id"], "body": "Oi!"})
    assert r.status_code == 409, r.text
    err = r.json()
    assert err["error"] == "ERR_WINDOW_CLOSED"
    assert "boas_vindas" in err["message"] and "pedido_pronto" in err["message"]
    assert "rascunho" not in err["message"]  # not approved
    r = await t.supervisor.post(
        "/api/v1/messages",
        json={
            "ticket_id": ticket["id"],
            "template": {"name": "boas_vindas", "language": "pt_BR", "parameters": ["Maria"]},
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["body"] == "[template boas_vindas] Maria"

    async def template_sent() -> Any:
        return [s for s in fake.sent[sent_before:] if s["type"] == "template"]

    (tpl,) = await wait_for(template_sent)
    assert tpl["template"]["name"] == "boas_vindas"
    assert tpl["template"]["components"][0]["parameters"] == [{"type": "text", "text": "Maria"}]
    assert not [s for s in fake.sent if s.get("text", {}).get("body", "").endswith("Oi!")]
    # Notes are not messages to the customer: allowed whatever the window.
    r = await t.supervisor.post(
        "/api/v1/messages", json={"ticket_id": ticket["id"], "body": "nota", "note": True}
    )
    assert r.status_code == 201
    # The customer writes again: the window opens.
    await says(live, fake, sid, "Voltei")
    shown = (await t.supervisor.get(f"/api/v1/tickets/{ticket['id']}")).json()
    assert shown["service_window"]["open"] is True
    r = await t.supervisor.post("/api/v1/messages", json={"ticket_id": ticket["id"], "body": "Oi!"})
    assert r.status_code == 201, r.text
    r = await t.admin.get(f"/api/v1/sessions/{sid}/templates")
    assert [x["name"] for x in r.json()] == ["boas_vindas", "pedido_pronto"]
    assert r.json()[0]["parameters"] == 1


async def test_templates_only_on_cloud_sessions(cloud_live: Live, fake: FakeGraph) -> None:
    live = cloud_live
    t = await live.tenant()
    r = await t.admin.post("/api/v1/sessions", json={"name": "Sandbox", "engine": 0})
    sandbox_id = r.json()["id"]
    r = await t.admin.get(f"/api/v1/sessions/{sandbox_id}/templates")
    assert r.status_code == 409 and r.json()["error"] == "ERR_NOT_CLOUD"
    r = await t.supervisor.post(
        "/api/v1/messages",
        json={
            "session_id": sandbox_id,
            "to": "+5511987654321",
            "template": {"name": "boas_vindas"},
        },
    )
    assert r.status_code == 409 and r.json()["error"] == "ERR_NOT_CLOUD"
    r = await t.supervisor.post(
        "/api/v1/messages",
        json={
            "session_id": sandbox_id,
            "to": "+5511987654321",
            "body": "x",
            "template": {"name": "boas_vindas"},
        },
    )
    assert r.status_code == 422


# --------------------------------------------------------------------------- errors


async def test_throughput_error_retried_and_window_error_fails_with_reason(
    cloud_live: Live, fake: FakeGraph
) -> None:
    live = cloud_live
    t = await live.tenant()
    sid = await cloud_session(live, t, fake)
    await says(live, fake, sid, "Oi")
    await menu_sent(fake)
    ticket = (await t.supervisor.get("/api/v1/tickets")).json()["items"][0]

    fake.fail_next(130429)
    r = await t.supervisor.post("/api/v1/messages", json={"ticket_id": ticket["id"], "body": "1"})
    mid = r.json()["id"]

    async def state_of(message_id: str) -> tuple[MessageStatus, str | None, int]:
        async with live.kernel.read() as db:
            m = await db.get(Message, uuid.UUID(message_id))
            box = await db.scalar(select(Outbox).where(Outbox.message_id == uuid.UUID(message_id)))
            assert m is not None and box is not None
            return m.status, m.error, box.attempts

    async def sent_after_retry() -> Any:
        got = await state_of(mid)
        return got if got[0] is MessageStatus.SENT else None

    _, error, attempts = await wait_for(sent_after_retry)
    assert attempts == 1 and error is None
    refused = [b.get("text", {}).get("body", "") for b in fake.refused]
    assert any(body.endswith("\n1") for body in refused)

    fake.fail_next(131047)
    r = await t.supervisor.post("/api/v1/messages", json={"ticket_id": ticket["id"], "body": "2"})
    mid = r.json()["id"]

    async def failed() -> Any:
        got = await state_of(mid)
        return got if got[0] is MessageStatus.FAILED else None

    _, error, attempts = await wait_for(failed)
    assert attempts == 1  # permanent: no retry
    assert error is not None and error.startswith("131047 Re-engagement message")
    async with live.kernel.read() as db:
        box = await db.scalar(select(Outbox).where(Outbox.message_id == uuid.UUID(mid)))
        assert box is not None and box.state is OutboxState.DEAD

    # Meta may also accept the send and fail it later, in a status webhook.
    fake.next_wamids.append("wamid.LATE-FAIL")
    r = await t.supervisor.post("/api/v1/messages", json={"ticket_id": ticket["id"], "body": "3"})
    mid = r.json()["id"]

    async def sent_late() -> Any:
        return (await state_of(mid))[0] is MessageStatus.SENT

    await wait_for(sent_late)
    failed_status = status("wamid.LATE-FAIL", "failed", errors=[meta_error(131047)])
    await post(live, fake, sid, fake.webhook(statuses=[failed_status]))
    await settled(live)
    got_status, error, _ = await state_of(mid)
    assert got_status is MessageStatus.FAILED and error is not None and "131047" in error


async def test_user_known_only_by_bsuid_is_routed_and_answered(
    cloud_live: Live, fake: FakeGraph
) -> None:
    live = cloud_live
    t = await live.tenant()
    sid = await cloud_session(live, t, fake)
    await says(live, fake, sid, "Oi", sender=None, user_id=BSUID)
    menu = await menu_sent(fake)
    assert menu["recipient"] == BSUID and "to" not in menu
    reply = inbound(
        "interactive",
        {"type": "list_reply", "list_reply": {"id": "1", "title": "Laboratório"}},
        sender=None,
        user_id=BSUID,
    )
    await post(
        live, fake, sid, fake.webhook(messages=[reply], contacts=[contact(None, "Ana", BSUID)])
    )
    await settled(live)
    async with live.kernel.read() as db:
        (client,) = (await db.scalars(select(Client))).all()
        assert client.phone is None
        kinds = {
            (i.kind, i.value)
            for i in await db.scalars(
                select(ClientIdentity).where(ClientIdentity.client_id == client.id)
            )
        }
        assert kinds == {(ClientIdentityKind.BSUID, BSUID)}
        (ticket,) = (await db.scalars(select(Ticket))).all()
        assert ticket.department_id == t.lab_id and ticket.client_id == client.id
    r = await t.supervisor.post(
        "/api/v1/messages", json={"ticket_id": str(ticket.id), "body": "Olá, Ana"}
    )
    assert r.status_code == 201, r.text

    async def answered() -> Any:
        return [s for s in fake.sent if s.get("text", {}).get("body", "").endswith("Olá, Ana")]

    (sent,) = await wait_for(answered)
    assert sent["recipient"] == BSUID
    # Later the same user shows their phone too: still one client.
    await says(live, fake, sid, "Meu número", user_id=BSUID)
    assert await count(live, Client) == 1


# --------------------------------------------------------------------------- secrets


async def test_secrets_never_shown_logged_or_audited(
    cloud_live: Live, fake: FakeGraph, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    live = cloud_live
    t = await live.tenant()
    sid = await cloud_session(live, t, fake)
    secrets = [fake.access_token, fake.app_secret, VERIFY]
    shown = (await t.admin.get(f"/api/v1/sessions/{sid}")).json()
    assert shown["config"]["access_token"] == "********"
    assert (
        shown["config"]["app_secret"] == "********"
        and shown["config"]["verify_token"] == "********"
    )
    assert shown["config"]["phone_number_id"] == fake.phone_number_id
    r = await t.admin.patch(
        f"/api/v1/sessions/{sid}", json={"config": {"access_token": "EAAG-rotated-1234567890"}}
    )
    assert r.status_code == 200, r.text
    secrets.append("EAAG-rotated-1234567890")
    r = await t.admin.patch(
        f"/api/v1/sessions/{sid}",
        json={"config": {"access_token": fake.access_token, "app_secret": "********"}},
    )
    assert r.status_code == 200, r.text
    await says(live, fake, sid, "Oi")
    await menu_sent(fake)
    listing = (await t.admin.get("/api/v1/sessions")).text
    async with live.kernel.read() as db:
        row = await db.get(WaSession, uuid.UUID(sid))
        assert row is not None
        stored = json.dumps(row.config)
        audit = json.dumps(
            [(a.action, a.data) for a in await db.scalars(select(AuditLog))], default=str
        )
        raw = json.dumps([w.payload for w in await db.scalars(select(WebhookEvent))], default=str)
    logs = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for secret in secrets:
        for where, text in (
            ("show", json.dumps(shown)),
            ("list", listing),
            ("database", stored),
            ("audit", audit),
            ("events", raw),
            ("logs", logs),
        ):
            assert secret not in text, f"a secret leaked into {where}"
    assert "enc:v1:" in stored
    assert "session.update" in audit


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


async def test_stored_bodies_left_pending_are_processed_at_start_and_bad_ones_poisoned(
    cloud_live: Live, fake: FakeGraph
) -> None:
    live = cloud_live
    t = await live.tenant()
    sid = await cloud_session(live, t, fake, start=False)
    daemon = live.daemon
    msg = inbound("text", {"body": "antes da queda"}, wamid="wamid.CRASH1")
    body = json.dumps(fake.webhook(messages=[msg], contacts=[contact(PHONE)])).encode()
    # Stored (and acknowledged) but never processed: the daemon died right after the 200.
    row_id = await daemon.cloud.store_webhook(uuid.UUID(sid), body, fake.signed(body))
    assert row_id is not None
    bad = json.dumps({"object": "whatsapp_business_account", "entry": "not a list"}).encode()
    bad_id = await daemon.cloud.store_webhook(uuid.UUID(sid), bad, fake.signed(bad))
    assert await count(live, Message) == 0
    assert await daemon.inbound.recover() == 2
    async with live.kernel.read() as db:
        raw = await db.get(WebhookEvent, row_id)
        poisoned = await db.get(WebhookEvent, bad_id)
        assert raw is not None and raw.state == 1  # PROCESSED
        assert poisoned is not None and poisoned.state == 2  # FAILED, with why
        assert poisoned.error is not None and poisoned.error.startswith("unreadable body")
        (message,) = (await db.scalars(select(Message).where(Message.direction == 0))).all()
        assert message.body == "antes da queda"
    assert await daemon.inbound.recover() == 0  # nothing twice
    assert await count(live, Message, Message.direction == 0) == 1


async def test_pacing_per_recipient_spends_no_attempt(cloud_live: Live, fake: FakeGraph) -> None:
    live = cloud_live
    t = await live.tenant()
    r = await t.admin.post(
        "/api/v1/sessions",
        json={
            "name": "Meta",
            "engine": 2,
            "config": cloud_config(fake) | {"pair_burst": 1, "pair_interval_seconds": 0.6},
        },
    )
    sid = r.json()["id"]
    assert (await t.admin.post(f"/api/v1/sessions/{sid}/start")).status_code == 202

    async def connected() -> bool:
        return (await t.admin.get(f"/api/v1/sessions/{sid}")).json()["status"] == 0

    await wait_for(connected)
    await says(live, fake, sid, "Oi")
    await menu_sent(fake)  # the one message the burst allows
    ticket = (await t.supervisor.get("/api/v1/tickets")).json()["items"][0]
    ids = []
    for text in ("primeira", "segunda"):
        r = await t.supervisor.post(
            "/api/v1/messages", json={"ticket_id": ticket["id"], "body": text}
        )
        ids.append(uuid.UUID(r.json()["id"]))

    async def all_sent() -> bool:
        async with live.kernel.read() as db:
            rows = (await db.scalars(select(Outbox).where(Outbox.message_id.in_(ids)))).all()
            return all(b.state is OutboxState.SENT for b in rows)

    await wait_for(all_sent)
    async with live.kernel.read() as db:
        rows = (await db.scalars(select(Outbox).where(Outbox.message_id.in_(ids)))).all()
        assert [b.attempts for b in rows] == [0, 0]  # paused, not failed
        assert any("pacing" in (b.last_error or "") for b in rows)
    gaps = [b - a for a, b in zip(fake.send_times, fake.send_times[1:], strict=False)]
    assert len(fake.sent) == 3 and min(gaps) >= 0.5  # one per interval to this user


async def test_credentials_stored_in_the_clear_are_sealed_at_start(cloud_live: Live) -> None:
    live = cloud_live
    t = await live.tenant()
    plain = {"phone_number_id": "123", "access_token": "EAAG-written-before-sealing"}
    async with live.kernel.tx() as db:
        row = WaSession(company_id=t.company_id, name="Antiga", engine=2, config=plain)
        db.add(row)
        await db.flush()
        sid = row.id
    assert await seal_stored(live.kernel, live.daemon.secret_box) == 1
    assert await seal_stored(live.kernel, live.daemon.secret_box) == 0  # idempotent
    async with live.kernel.read() as db:
        got = await db.get(WaSession, sid)
        assert got is not None and "EAAG-written-before-sealing" not in json.dumps(got.config)
        assert live.daemon.secret_box.unseal(got.config) == plain


@pytest.fixture
async def crashy_live(engine: AsyncEngine, backend: Any, tmp_path: Path) -> AsyncIterator[Live]:
    """A zapd whose outbox takes a claim back 1 s after a worker stopped mid-send."""
    settings = daemon_settings(
        tmp_path,
        outbox_backoff_base=0.05,
        outbox_backoff_cap=0.2,
        outbox_poll_interval=0.05,
        outbox_lock_seconds=1.0,
    )
    async with serving(engine, backend, settings) as lv:
        yield lv


async def test_send_in_doubt_after_a_crash_is_settled_by_its_status_webhook(
    crashy_live: Live, fake: FakeGraph
) -> None:
    """Meta accepted a send and the daemon 'died' before recording it (the row stays
    SENDING, the connector forgets its answer). Taken back in doubt: a stored status
    webhook carrying the send's key (biz_opaque_callback_data) gives its wamid and
    nothing goes out twice; with no such status, the send is held for the session's
    `in_doubt_hold_seconds`, then sent again (at-least-once, never lost)."""
    live = crashy_live
    t = await live.tenant()
    config = cloud_config(fake) | {"in_doubt_hold_seconds": 1.0}
    r = await t.admin.post("/api/v1/sessions", json={"name": "Meta", "engine": 2, "config": config})
    sid = r.json()["id"]
    assert (await t.admin.post(f"/api/v1/sessions/{sid}/start")).status_code == 202

    async def connected() -> bool:
        return (await t.admin.get(f"/api/v1/sessions/{sid}")).json()["status"] == 0

    await wait_for(connected)
    await says(live, fake, sid, "Oi")
    await menu_sent(fake)
    ticket = (await t.supervisor.get("/api/v1/tickets")).json()["items"][0]

    worker = live.daemon.outbox_worker
    record = worker.record_success
    crashed: list[tuple[Any, str]] = []

    async def dies_after_meta_answered(claim: Any, wa_id: str) -> None:
        once = claim.body and claim.body.endswith(("Confirmado", "Segunda"))
        if once and all(c.message_id != claim.message_id for c, _ in crashed):
            crashed.append((claim, wa_id))
            conn = live.daemon.engines.connector(uuid.UUID(sid))
            conn._accepted.clear()  # type: ignore[union-attr]  # a new process knows nothing
            return  # nothing recorded: the row stays SENDING until its lock runs out
        await record(claim, wa_id)

    worker.record_success = dies_after_meta_answered  # type: ignore[method-assign]

    def bodies(end: str) -> list[str]:
        texts = [s.get("text", {}).get("body", "") for s in fake.sent]
        return [b for b in texts if b.endswith(end)]

    async def outcome(mid: str) -> Any:
        async with live.kernel.read() as db:
            m = await db.get(Message, uuid.UUID(mid))
            box = await db.scalar(select(Outbox).where(Outbox.message_id == uuid.UUID(mid)))
            assert m is not None and box is not None
            return m, box

    # 1. The status webhook is stored before the claim is taken back: settled by it.
    r = await t.supervisor.post(
        "/api/v1/messages", json={"ticket_id": ticket["id"], "body": "Confirmado"}
    )
    mid = r.json()["id"]
    await wait_for(lambda: _now(crashed))
    claim, wamid = crashed[0]
    key = fake.by_wamid[wamid]["biz_opaque_callback_data"]
    assert key == claim.idempotency_key
    hook = await post(
        live,
        fake,
        sid,
        fake.webhook(statuses=[status(wamid, "delivered", callback=key)]),
    )
    assert hook.status_code == 200, hook.text
    assert await live.daemon.cloud.find_sent(uuid.UUID(sid), key) == wamid

    async def recorded() -> Any:
        m, box = await outcome(mid)
        return (m, box) if box.state is OutboxState.SENT else None

    m, box = await wait_for(recorded)
    assert m.wa_message_id == wamid and m.status is MessageStatus.DELIVERED  # early ack applied
    assert box.attempts == 0
    assert len(bodies("Confirmado")) == 1  # not sent twice

    # 2. No status ever comes: held for 1 s, then sent again (the customer may get it twice).
    r = await t.supervisor.post(
        "/api/v1/messages", json={"ticket_id": ticket["id"], "body": "Segunda"}
    )
    mid = r.json()["id"]
    await wait_for(lambda: _now(len(crashed) == 2))
    m, box = await wait_for(recorded)
    sent_twice = bodies("Segunda")
    assert len(sent_twice) == 2
    assert m.wa_message_id != crashed[1][1]  # the second send's id
    assert box.attempts == 0 and "in doubt" in (box.last_error or "")


async def _now(value: Any) -> Any:
    return value
