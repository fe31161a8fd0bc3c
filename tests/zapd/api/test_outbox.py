"""The outbox admin API (`zapctl outbox list|retry|drop`) over real HTTP, both backends."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from shared.enums import MessageStatus, OutboxState
from tests.zapd.api.conftest import Live, Tenant
from tests.zapd.api.test_conversation import connected_session, wait_for
from tests.zapd.services.delivery.test_outbox_worker import seed_ticket
from zapd.connectors.sandbox import AckTiming
from zapd.db.models import AuditLog, Chat, Message, MessageStatusHistory, Outbox
from zapd.db.types import utcnow
from zapd.services.delivery import outbox

PHONE = "+5511987650001"
LATER = timedelta(hours=1)


async def seed_entry(
    live: Live,
    chat_id: uuid.UUID,
    ticket_id: uuid.UUID | None,
    body: str,
    state: OutboxState,
) -> tuple[uuid.UUID, uuid.UUID]:
    """Queue a message, then force its outbox row into `state` (not due for an hour)."""
    async with live.kernel.tx() as db:
        chat = await db.get(Chat, chat_id)
        assert chat is not None
        q = await outbox.enqueue(db, chat, body)
        assert q.outbox is not None
        q.message.ticket_id = ticket_id
        box = q.outbox
        box.state = state
        box.next_attempt_at = utcnow() + LATER
        if state is OutboxState.DEAD:
            box.attempts = box.max_attempts = 8
            box.last_error = "injected sandbox failure"
            q.message.status = MessageStatus.FAILED
            q.message.error = "gave up after 8 attempts: injected sandbox failure"
        elif state is OutboxState.SENT:
            box.sent_at = utcnow()
            q.message.status = MessageStatus.DELIVERED
            q.message.wa_message_id = f"WAMID-{uuid.uuid4().hex}"
        return box.id, q.message.id


async def setup(live: Live) -> tuple[Tenant, str, dict[str, tuple[uuid.UUID, uuid.UUID]]]:
    """A connected session and one entry per state: dead, pending (not due), sent."""
    live.daemon.sandbox.timing = AckTiming(sent=0.01, delivered=0.02, read=0.03, jitter=0.01)
    t = await live.tenant()
    sid = await connected_session(live, t)
    ticket_id, chat_id = await seed_ticket(live, t.company_id, sid, PHONE, department_id=t.lab_id)
    entries = {
        "dead": await seed_entry(live, chat_id, ticket_id, "Mensagem morta", OutboxState.DEAD),
        "pending": await seed_entry(live, chat_id, ticket_id, "Na fila", OutboxState.PENDING),
        "sent": await seed_entry(live, chat_id, ticket_id, "Já foi", OutboxState.SENT),
    }
    return t, sid, entries


def inbox(live: Live, sid: str) -> list[str | None]:
    return [d.body for d in live.daemon.sandbox.inbox(uuid.UUID(sid), PHONE)]


async def audit_rows(live: Live, company_id: uuid.UUID, action: str) -> list[AuditLog]:
    async with live.kernel.read() as db:
        return list(
            (
                await db.scalars(
                    select(AuditLog)
                    .where(AuditLog.company_id == company_id, AuditLog.action == action)
                    .order_by(AuditLog.id)
                )
            ).all()
        )


async def test_list_filters_pages_and_roles(live: Live) -> None:
    t, sid, entries = await setup(live)
    r = await t.admin.get("/api/v1/outbox")
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["id"] for i in items] == [str(entries[k][0]) for k in ("sent", "pending", "dead")]
    dead = items[2]
    assert dead["state"] == OutboxState.DEAD and dead["attempts"] == 8
    assert dead["message_status"] == MessageStatus.FAILED
    assert dead["last_error"] == "injected sandbox failure"
    assert dead["to"] == "5511987650001@s.whatsapp.net" and dead["preview"] == "Mensagem morta"
    assert dead["session_id"] == sid and dead["message_id"] == str(entries["dead"][1])
    assert dead["ticket_id"] is not None and dead["chat_id"]

    r = await t.admin.get("/api/v1/outbox", params={"state": int(OutboxState.DEAD)})
    assert [i["id"] for i in r.json()["items"]] == [str(entries["dead"][0])]
    r = await t.admin.get("/api/v1/outbox", params={"session_id": str(uuid.uuid4())})
    assert r.json()["items"] == []
    page1 = (await t.admin.get("/api/v1/outbox", params={"limit": 2, "order": "asc"})).json()
    assert len(page1["items"]) == 2 and page1["next_cursor"]
    page2 = (
        await t.admin.get(
            "/api/v1/outbox", params={"limit": 2, "order": "asc", "cursor": page1["next_cursor"]}
        )
    ).json()
    assert [i["id"] for i in page1["items"] + page2["items"]] == [
        str(entries[k][0]) for k in ("dead", "pending", "sent")
    ]
    assert page2["next_cursor"] is None
    r = await t.admin.get(f"/api/v1/outbox/{entries['pending'][0]}")
    assert r.status_code == 200 and r.json()["state"] == OutboxState.PENDING

    for client in (t.supervisor, t.agent):
        r = await client.get("/api/v1/outbox")
        assert r.status_code == 403 and r.json()["error"] == "ERR_FORBIDDEN"
        r = await client.get(f"/api/v1/outbox/{entries['dead'][0]}")
        assert r.status_code == 403
    for bad in ({"state": 9}, {"state": "dead"}, {"limit": 0}, {"cursor": "!!"}):
        r = await t.admin.get("/api/v1/outbox", params=bad)
        assert r.status_code == 422, (bad, r.text)

    other = await live.tenant("Other")
    assert (await other.admin.get("/api/v1/outbox")).json()["items"] == []
    r = await other.admin.get("/api/v1/outbox", params={"company_id": str(t.company_id)})
    assert r.status_code == 404
    r = await other.admin.get(f"/api/v1/outbox/{entries['dead'][0]}")
    assert r.status_code == 404 and r.json()["error"] == "ERR_NOT_FOUND"
    assert live.root is not None
    r = await live.root.get("/api/v1/outbox", params={"company_id": str(t.company_id)})
    assert len(r.json()["items"]) == 3


async def test_retry_sends_a_dead_message_once(live: Live) -> None:
    t, sid, entries = await setup(live)
    box_id, message_id = entries["dead"]
    other = await live.tenant("Other")
    for client, status in ((t.agent, 403), (t.supervisor, 403), (other.admin, 404)):
        r = await client.post(f"/api/v1/outbox/{box_id}/retry")
        assert r.status_code == status, r.text
    r = await t.admin.post(f"/api/v1/outbox/{uuid.uuid4()}/retry")
    assert r.status_code == 404
    assert inbox(live, sid) == []

    r = await t.admin.post(f"/api/v1/outbox/{box_id}/retry")
    assert r.status_code == 200, r.text
    assert r.json()["attempts"] == 0 and r.json()["state"] in (
        OutboxState.PENDING,
        OutboxState.SENDING,
        OutboxState.SENT,
    )

    async def delivered() -> Any:
        async with live.kernel.read() as db:
            box = await db.get(Outbox, box_id)
            msg = await db.get(Message, message_id)
            assert box is not None and msg is not None
            return (box, msg) if box.state is OutboxState.SENT else None

    box, msg = await wait_for(delivered)
    assert box.sent_at is not None and box.attempts == 0
    assert msg.status is not MessageStatus.FAILED and msg.error is None
    assert msg.wa_message_id is not None
    assert inbox(live, sid) == ["Mensagem morta"]
    async with live.kernel.read() as db:
        history = (
            await db.execute(
                select(MessageStatusHistory.status, MessageStatusHistory.source)
                .where(MessageStatusHistory.message_id == message_id)
                .order_by(MessageStatusHistory.created_at)
            )
        ).all()
        assert tuple(history[0]) == (MessageStatus.SENT, "outbox")
    (row,) = await audit_rows(live, t.company_id, "outbox.retry")
    assert row.entity_id == box_id and row.user_id == t.users["admin"]
    assert row.data["changes"]["state"] == [OutboxState.DEAD, OutboxState.PENDING]
    assert row.data["changes"]["attempts"] == [8, 0]

    r = await t.admin.post(f"/api/v1/outbox/{entries['sent'][0]}/retry")
    assert r.status_code == 409 and r.json()["error"] == "ERR_OUTBOX_STATE"
    await asyncio.sleep(0.3)
    assert inbox(live, sid) == ["Mensagem morta"]


async def test_drop_cancels_and_fails_the_message(live: Live) -> None:
    t, sid, entries = await setup(live)
    pending_box, pending_msg = entries["pending"]
    other = await live.tenant("Other")
    for client, status in ((t.agent, 403), (t.supervisor, 403), (other.admin, 404)):
        r = await client.post(f"/api/v1/outbox/{pending_box}/drop")
        assert r.status_code == status, r.text

    r = await t.admin.post(f"/api/v1/outbox/{pending_box}/drop")
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["state"] == OutboxState.CANCELLED and out["message_status"] == MessageStatus.FAILED
    r = await t.admin.post(f"/api/v1/outbox/{pending_box}/drop")
    assert r.status_code == 409 and r.json()["error"] == "ERR_OUTBOX_STATE"
    r = await t.admin.post(f"/api/v1/outbox/{pending_box}/retry")
    assert r.status_code == 409

    dead_box, dead_msg = entries["dead"]
    r = await t.admin.post(f"/api/v1/outbox/{dead_box}/drop")
    assert r.status_code == 200 and r.json()["state"] == OutboxState.CANCELLED
    r = await t.admin.post(f"/api/v1/outbox/{entries['sent'][0]}/drop")
    assert r.status_code == 409

    async with live.kernel.read() as db:
        for mid in (pending_msg, dead_msg):
            msg = await db.get(Message, mid)
            assert msg is not None
            assert msg.status is MessageStatus.FAILED and msg.error == "dropped by admin"
    rows = await audit_rows(live, t.company_id, "outbox.drop")
    assert [r.entity_id for r in rows] == [pending_box, dead_box]
    assert rows[0].data["changes"]["state"] == [OutboxState.PENDING, OutboxState.CANCELLED]
    # Dropped entries never go out, even when they would have been due.
    async with live.kernel.tx() as db:
        for box in await db.scalars(select(Outbox).where(Outbox.company_id == t.company_id)):
            box.next_attempt_at = utcnow()
    live.daemon.outbox_worker.wake()
    await asyncio.sleep(0.5)
    assert inbox(live, sid) == []
