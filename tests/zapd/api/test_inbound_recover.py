"""Recovery at start-up: unreadable stored events are poisoned, the rest processed."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from shared.enums import Engine, WebhookEventState
from tests.zapd.api import seed
from tests.zapd.api.conftest import Live
from zapd.connectors.events import MessageEvent, dump_event
from zapd.db.models import Message, WebhookEvent


async def test_an_unreadable_event_does_not_block_recovery(live: Live) -> None:
    t = await live.tenant()
    sid = await seed.session(live, t.company_id)
    now = datetime.now(UTC)
    good = MessageEvent(
        session_id=sid,
        at=now,
        wa_message_id="GOOD-1",
        chat_jid="5511912345678@s.whatsapp.net",
        sender_jid="5511912345678@s.whatsapp.net",
        body="oi",
        timestamp=now,
    )
    async with live.kernel.tx() as db:
        bad = WebhookEvent(
            company_id=t.company_id,
            session_id=sid,
            engine=Engine.SANDBOX,
            event_type="message",
            payload={"kind": "message", "garbage": True},
        )
        ok = WebhookEvent(
            company_id=t.company_id,
            session_id=sid,
            engine=Engine.SANDBOX,
            event_type="message",
            payload=dump_event(good),
        )
        db.add_all([bad, ok])
        await db.flush()
        bad_id, ok_id = bad.id, ok.id
    assert await live.daemon.inbound.recover() == 2  # must not raise
    async with live.kernel.read() as db:
        bad_row = await db.get(WebhookEvent, bad_id)
        ok_row = await db.get(WebhookEvent, ok_id)
        assert bad_row is not None and bad_row.state == WebhookEventState.FAILED
        assert "unreadable stored event" in (bad_row.error or "")
        assert ok_row is not None and ok_row.state == WebhookEventState.PROCESSED
        assert (
            await db.scalar(select(Message.body).where(Message.wa_message_id == "GOOD-1")) == "oi"
        )
