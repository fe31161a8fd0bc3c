"""Idempotency answers say what they are: a true replay says so (`Idempotent-Replayed`),
the same key with another request is refused (422 ERR_IDEMPOTENCY_MISMATCH) and changes
nothing, and a redelivered inbound message is acknowledged as a duplicate, stored once."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.zapd.api.conftest import Live
from tests.zapd.api.test_conversation import connected_session, say
from tests.zapd.api.test_messages import counts, send_with, setup
from zapd.db.models import Message


async def test_same_key_other_body_is_refused_and_changes_nothing(live: Live) -> None:
    t, _sid, ticket_id = await setup(live)
    key = {"Idempotency-Key": "retry-7"}
    first = await send_with(t.agent, ticket_id, "Seu exame está pronto", key)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    before = await counts(live)
    for body, kw in (("Seu exame NÃO está pronto", {}), ("Seu exame está pronto", {"note": True})):
        r = await send_with(t.agent, ticket_id, body, key, **kw)
        assert r.status_code == 422, r.text
        assert r.json()["error"] == "ERR_IDEMPOTENCY_MISMATCH"
        assert "Idempotency-Key" in r.json()["message"]
    assert await counts(live) == before
    replay = await send_with(t.agent, ticket_id, "Seu exame está pronto", key)
    assert replay.status_code == 200 and replay.json()["id"] == first.json()["id"]
    assert replay.headers["Idempotent-Replayed"] == "true"
    # Notes too: the same note replays, another text under its key is refused.
    nkey = {"Idempotency-Key": "note-7"}
    n1 = await send_with(t.agent, ticket_id, "ligar amanhã", nkey, note=True)
    n2 = await send_with(t.agent, ticket_id, "ligar amanhã", nkey, note=True)
    n3 = await send_with(t.agent, ticket_id, "ligar hoje", nkey, note=True)
    assert (n1.status_code, n2.status_code, n3.status_code) == (201, 200, 422)
    assert n2.headers["Idempotent-Replayed"] == "true"
    assert n3.json()["error"] == "ERR_IDEMPOTENCY_MISMATCH"


async def test_duplicate_inbound_is_acknowledged_as_one(live: Live) -> None:
    t = await live.tenant()
    sid = await connected_session(live, t)
    r = await t.admin.post(
        f"/api/v1/sandbox/{sid}/inbound",
        json={"from": "+5511912345678", "text": "Oi", "wa_message_id": "WAMID-ONCE"},
    )
    assert r.status_code == 201 and r.json()["duplicate"] is False
    assert "idempotent-replayed" not in r.headers
    for _ in range(2):
        r = await t.admin.post(
            f"/api/v1/sandbox/{sid}/inbound",
            json={"from": "+5511912345678", "text": "Oi", "wa_message_id": "WAMID-ONCE"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["duplicate"] is True
        assert r.headers["Idempotent-Replayed"] == "true"
    await say(t, sid, "+5511912345678", "outra coisa")  # a new id is a new message
    async with live.kernel.read() as db:
        stored = await db.scalar(
            select(func.count()).select_from(Message).where(Message.wa_message_id == "WAMID-ONCE")
        )
        inbound = await db.scalar(
            select(func.count()).select_from(Message).where(Message.direction == 0)
        )
    assert (stored, inbound) == (1, 2)
