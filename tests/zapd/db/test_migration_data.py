"""Migrations that move data, on both backends: what a database written by the older
code holds afterwards. (`client_terms`' back-fill: tests/zapd/db/test_search.py.)"""

from __future__ import annotations

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import MessageDirection, MessageStatus, OutboxState
from tests.conftest import Backend
from zapd.db import migrate
from zapd.db.models import Outbox
from zapd.db.types import new_id, utcnow

from . import factories


async def test_0005_gives_every_outbox_row_its_messages_chat(backend: Backend) -> None:
    engine = backend.engine()
    try:
        await migrate.upgrade(engine, "0004")
        async with AsyncSession(engine, expire_on_commit=False) as db, db.begin():
            company, session = await factories.tenant(db)
            chats = [factories.chat(company, session) for _ in range(2)]
            db.add_all(chats)
            await db.flush()
            messages = [
                factories.message(
                    company,
                    session,
                    chat,
                    direction=MessageDirection.OUTBOUND,
                    status=MessageStatus.QUEUED,
                )
                for chat in (chats[0], chats[1], chats[1])
            ]
            db.add_all(messages)
            await db.flush()
            # Core, without chat_id: the row as 0004's code wrote it.
            for m in messages:
                await db.execute(
                    insert(Outbox.__table__).values(
                        id=new_id(),
                        company_id=company.id,
                        session_id=session.id,
                        message_id=m.id,
                        idempotency_key=f"msg:{m.id}",
                        state=OutboxState.PENDING,
                        attempts=0,
                        max_attempts=8,
                        next_attempt_at=utcnow(),
                        created_at=utcnow(),
                        updated_at=utcnow(),
                    )
                )
        await migrate.upgrade(engine)
        async with engine.connect() as conn:
            got = {m: c for m, c in await conn.execute(select(Outbox.message_id, Outbox.chat_id))}
        assert got == {m.id: m.chat_id for m in messages}
        assert len(set(got.values())) == 2
    finally:
        await engine.dispose()
