"""Held rows are written exactly as the session would write them, parents first."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import bindparam, event, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import ChatType, MessageDirection, MessageStatus, TicketStatus
from tests.zapd.db import factories as f
from zapd.db.models import Chat, Client, ClientTerm, Message, Ticket
from zapd.db.types import IntEnumType, UTCDateTime, new_id, utcnow
from zapd.kernel.held import Held, bind_processor, write_changes
from zapd.kernel.pgtx import PgTx

SKIP = {"id", "created_at", "updated_at", "client_id", "chat_id", "ticket_id", "number", "phone"}
SKIP |= {"wa_chat_id"}  # what the two families differ in by construction


async def _row(db: AsyncSession, model: Any, row_id: uuid.UUID) -> dict[str, Any]:
    table = model.__table__
    found = (await db.execute(select(table).where(table.c.id == row_id))).mappings().one()
    return {k: v for k, v in found.items() if k not in SKIP}


def _family(c: Any, s: Any, phone: str) -> tuple[Client, Chat, Ticket]:
    client = Client(
        id=new_id(), company_id=c.id, phone=phone, profile_name="Zé", custom_fields={"a": [1]}
    )
    chat = Chat(
        id=new_id(),
        company_id=c.id,
        session_id=s.id,
        client_id=client.id,
        wa_chat_id=phone[1:] + "@s.whatsapp.net",
        type=ChatType.DIRECT,
    )
    ticket = Ticket(id=new_id(), company_id=c.id, number=0, client_id=client.id, session_id=s.id)
    return client, chat, ticket


async def test_held_rows_match_the_sessions_and_attach_clean(db: AsyncSession) -> None:
    c, s = await f.tenant(db)
    plain = _family(c, s, "+5511911110000")
    plain[2].number = 1
    for obj in plain:
        db.add(obj)
        await db.flush()
    held = Held()
    family = _family(c, s, "+5511922220000")
    family[2].number = 2
    # Added children first: the insert still puts parents first.
    for obj in reversed(family):
        held.add(obj)
    assert family[2].unread_count == 0 and family[0].blocked is False  # defaults at once
    now = utcnow()
    message = {  # a raw row: the columns it leaves out get their defaults
        "id": new_id(),
        "company_id": c.id,
        "session_id": s.id,
        "chat_id": family[1].id,
        "ticket_id": family[2].id,
        "direction": MessageDirection.INBOUND,
        "status": MessageStatus.RECEIVED,
        "body": "oi",
        "wa_message_id": "W1",
        "extra": {},
        "created_at": now,
        "updated_at": now,
    }
    held.add_row(Message, message)
    await held.insert(db)
    assert not held
    for a, b in zip(plain, family, strict=True):
        assert await _row(db, type(a), a.id) == await _row(db, type(b), b.id)
    stored = await _row(db, Message, message["id"])
    assert stored["is_note"] is False and stored["body"] == "oi" and stored["extra"] == {}
    # Attached, persistent and clean: a later change is an ordinary update.
    assert family[1] in db and not db.dirty
    family[1].unread_count += 1
    await db.flush()
    assert (await _row(db, Chat, family[1].id))["unread_count"] == 1


async def test_write_changes_writes_what_a_flush_would_and_leaves_it_nothing(
    db: AsyncSession,
) -> None:
    c, s = await f.tenant(db)
    client, chat, ticket = _family(c, s, "+5511933330000")
    ticket.number = 1
    for obj in (client, chat, ticket):
        db.add(obj)
        await db.flush()
    stamped = chat.updated_at
    chat.unread_count += 2
    chat.name = chat.name  # set to what it holds: no change
    ticket.flow_data = {"tries": 1}
    untouched = ticket.updated_at
    await write_changes(db, (Chat,))  # tickets are left to the flush
    sqlite = db.get_bind().dialect.name == "sqlite"
    # Elsewhere the flush writes both (it costs the same there).
    assert db.is_modified(chat) != sqlite and db.is_modified(ticket)
    if sqlite:  # clean, as a flush leaves it: the flush does not look at it again
        assert chat not in db.dirty and ticket in db.dirty
    statements: list[str] = []

    def seen(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        statements.append(statement.split()[1])

    engine = db.get_bind()
    event.listen(engine, "before_cursor_execute", seen)
    try:
        await db.flush()
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    # On SQLite the chat's UPDATE was queued: it rode with the flush's trip unseen here.
    assert statements == (["tickets"] if sqlite else ["chats", "tickets"])
    table = Chat.__table__
    row = (await db.execute(select(table).where(table.c.id == chat.id))).mappings().one()
    assert row["unread_count"] == 2 and row["updated_at"] >= stamped
    assert (chat.unread_count, chat.updated_at) == (2, row["updated_at"])  # the object agrees
    table = Ticket.__table__
    row = (await db.execute(select(table).where(table.c.id == ticket.id))).mappings().one()
    assert row["flow_data"] == {"tries": 1} and row["updated_at"] >= untouched


async def test_a_held_client_gets_the_search_terms_a_flush_would_give_it(
    db: AsyncSession,
) -> None:
    c, _ = await f.tenant(db)
    flushed = f.client(c, phone="+5511944440000", profile_name="Lúcia Ferreira")
    db.add(flushed)
    await db.flush()
    held_client = f.client(c, phone="+5511944440001", profile_name="Lúcia Ferreira")
    held = Held()
    held.add(held_client)
    held_client.name = "Maria Souza"  # a name set before the insert counts too
    await held.insert(db)
    await db.flush()

    async def terms(client_id: uuid.UUID) -> set[str]:
        got = await db.scalars(select(ClientTerm.term).where(ClientTerm.client_id == client_id))
        return set(got)

    assert await terms(flushed.id) == {"lucia", "ferreira"}
    assert await terms(held_client.id) == {"lucia", "ferreira", "maria", "souza"}


async def test_postgresql_held_updates_go_with_the_insert_in_one_statement(
    db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL, `write_changes` with a holder: the loaded rows' changes, the new
    rows (a child beside its parent) and an `also` UPDATE go as one statement, and the
    flush that follows has nothing left to write."""
    if db.get_bind().dialect.name != "postgresql":
        pytest.skip("the one-statement insert is PostgreSQL's")
    c, s = await f.tenant(db)
    client, chat, ticket = _family(c, s, "+5511955550000")
    ticket.number = 1
    for obj in (client, chat, ticket):
        db.add(obj)
        await db.flush()
    stamped = chat.updated_at
    chat.unread_count += 3
    ticket.flow_data = {"tries": 2}
    held = Held()
    family = _family(c, s, "+5511955550001")
    family[2].number = 2
    for obj in reversed(family):
        held.add(obj)
    held.also(
        update(Client).where(Client.id == bindparam("cid")).values(notes="seen"),
        {"cid": client.id},
    )
    await write_changes(db, (Chat, Ticket), held)
    assert not db.is_modified(chat) and not db.is_modified(ticket)
    statements: list[str] = []

    def seen(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    sent = PgTx.fetch  # the insert goes on the transaction's asyncpg connection

    async def sent_past_the_session(self: PgTx, sql: str, args: Any) -> list[Any]:
        statements.append(sql)
        return await sent(self, sql, args)

    monkeypatch.setattr(PgTx, "fetch", sent_past_the_session)
    engine = db.get_bind()
    event.listen(engine, "before_cursor_execute", seen)
    try:
        await held.insert(db)
        await db.flush()
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert len(statements) == 1 and statements[0].startswith("WITH "), statements
    stored_chat = await _row(db, Chat, chat.id)
    assert stored_chat["unread_count"] == 3
    stored_ticket = await _row(db, Ticket, ticket.id)
    assert stored_ticket["flow_data"] == {"tries": 2}
    stored_client = await _row(db, Client, client.id)
    assert stored_client["notes"] == "seen"
    table = Chat.__table__
    updated = await db.scalar(select(table.c.updated_at).where(table.c.id == chat.id))
    assert updated is not None and updated >= stamped
    assert (await _row(db, Client, family[0].id))["profile_name"] == "Zé"
    # Two shapes of change to one table (two UPDATE parts, each row once): fine.
    chat.unread_count += 1
    family[1].name = "other"
    await write_changes(db, (Chat,), held)
    await held.insert(db)
    assert (await _row(db, Chat, chat.id))["unread_count"] == 4
    assert (await _row(db, Chat, family[1].id))["name"] == "other"
    # A row that could change twice in one statement: refused (one change would be lost).
    chat.unread_count += 1
    await write_changes(db, (Chat,), held)
    held.also(update(Chat).where(Chat.id == bindparam("x")).values(name="n"), {"x": chat.id})
    with pytest.raises(RuntimeError):
        await held.insert(db)


async def test_postgresql_held_insert_refuses_a_value_too_long(db: AsyncSession) -> None:
    """Strings go as text arrays: the column's own length check still speaks."""
    if db.get_bind().dialect.name != "postgresql":
        pytest.skip("the one-statement insert is PostgreSQL's")
    c, _ = await f.tenant(db)
    held = Held()
    held.add(f.client(c, phone="+5511966660000", profile_name="x" * 201))
    with pytest.raises(DBAPIError):
        await held.insert(db)


def test_our_sqlite_bind_processors_send_what_sqlalchemys_would() -> None:
    dialect = sqlite.dialect()
    utc = UTCDateTime()
    ours, theirs = bind_processor(utc, dialect), utc.dialect_impl(dialect).bind_processor(dialect)
    assert ours is not None and theirs is not None
    minus3 = timezone(timedelta(hours=-3))
    for value in (
        utcnow(),
        datetime(2026, 1, 1, tzinfo=UTC),  # no microseconds: still six digits
        datetime(2026, 12, 31, 22, 30, 0, 5, tzinfo=minus3),  # another zone, next day in UTC
        datetime(999, 3, 4, 5, 6, 7, 8, tzinfo=UTC),  # a three-digit year
        None,
    ):
        assert ours(value) == theirs(value) == ours(value)  # the second from its memo
    assert ours(datetime(1, 1, 1, tzinfo=UTC)) == theirs(datetime(1, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="naive"):
        ours(datetime(2026, 1, 1))
    status = IntEnumType(TicketStatus)
    ours, theirs = (
        bind_processor(status, dialect),
        status.dialect_impl(dialect).bind_processor(dialect),
    )
    assert ours is not None and theirs is not None
    for member in (*TicketStatus, int(TicketStatus.CLOSED), None):
        assert ours(member) == theirs(member)
    with pytest.raises(ValueError):
        ours(99)


async def test_write_changes_leaves_an_object_set_to_what_it_held_clean(db: AsyncSession) -> None:
    c, s = await f.tenant(db)
    client, chat, ticket = _family(c, s, "+5511933330001")
    ticket.number, ticket.chat_id = 1, chat.id
    for obj in (client, chat, ticket):
        db.add(obj)
        await db.flush()
    ticket.chat_id = chat.id  # no change, but the session counts it as dirty
    assert ticket in db.dirty
    stamped = ticket.updated_at
    await write_changes(db, (Ticket,))
    if db.get_bind().dialect.name == "sqlite":
        assert ticket not in db.dirty
    await db.flush()
    table = Ticket.__table__
    row = (await db.execute(select(table).where(table.c.id == ticket.id))).mappings().one()
    assert row["updated_at"] == stamped == ticket.updated_at  # nothing was written
