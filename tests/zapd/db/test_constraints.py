"""Uniqueness and integrity rules, proven by trying to break them on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import Role, TicketStatus
from tests.zapd.db import factories as f
from zapd.db.models import (
    Chat,
    Department,
    Event,
    Message,
    QuickReply,
    Ticket,
    User,
)


async def _commit_fails(db: AsyncSession, *rows: object) -> None:
    """Insert `rows` in a separate session and expect the database to refuse them.

    A separate session keeps `db` untouched: a rollback there would expire every
    object the test still holds.
    """
    async with AsyncSession(db.bind, expire_on_commit=False) as other:
        other.add_all(rows)
        with pytest.raises(IntegrityError):
            await other.commit()


async def test_duplicate_wa_message_id_in_one_session_is_refused(db: AsyncSession) -> None:
    c, s = await f.tenant(db)
    ch = f.chat(c, s)
    db.add(ch)
    await db.flush()
    db.add(f.message(c, s, ch, "WAMID.1"))
    await db.commit()
    await _commit_fails(db, f.message(c, s, ch, "WAMID.1"))
    assert await db.scalar(select(func.count()).select_from(Message)) == 1


async def test_same_wa_message_id_elsewhere_is_fine(db: AsyncSession) -> None:
    c1, s1 = await f.tenant(db)
    c2, s2 = await f.tenant(db)
    s1b = f.session(c1)
    db.add(s1b)
    await db.flush()
    chats = [f.chat(c1, s1), f.chat(c1, s1b), f.chat(c2, s2)]
    db.add_all(chats)
    await db.flush()
    db.add_all(
        [
            f.message(c1, s1, chats[0], "WAMID.X"),
            f.message(c1, s1b, chats[1], "WAMID.X"),  # other session, same company
            f.message(c2, s2, chats[2], "WAMID.X"),  # other company
            # Outbound messages have no WhatsApp id until sent: NULLs never collide.
            f.message(c1, s1, chats[0], None),
            f.message(c1, s1, chats[0], None),
        ]
    )
    await db.commit()
    assert await db.scalar(select(func.count()).select_from(Message)) == 5


async def test_duplicate_cnpj_is_refused(db: AsyncSession) -> None:
    c = f.company()
    db.add(c)
    await db.commit()
    await _commit_fails(db, f.company(cnpj=c.cnpj, name="Other"))


async def test_cnpj_must_have_14_chars(db: AsyncSession) -> None:
    await _commit_fails(db, f.company(cnpj="123"))


async def test_duplicate_client_phone_per_company(db: AsyncSession) -> None:
    c1, _ = await f.tenant(db)
    c2, _ = await f.tenant(db)
    db.add(f.client(c1, "+5511912345678"))
    await db.commit()
    await _commit_fails(db, f.client(c1, "+5511912345678"))
    db.add(f.client(c2, "+5511912345678"))  # same phone, other company
    await db.commit()


async def test_duplicate_session_phone_and_chat_id(db: AsyncSession) -> None:
    c1, s1 = await f.tenant(db)
    c2, _ = await f.tenant(db)
    s1.phone = "+5511900000001"
    await db.commit()
    await _commit_fails(db, f.session(c1, phone="+5511900000001"))
    db.add(f.session(c2, phone="+5511900000001"))
    await db.commit()
    db.add(Chat(company_id=c1.id, session_id=s1.id, wa_chat_id="1@s.whatsapp.net"))
    await db.commit()
    await _commit_fails(db, Chat(company_id=c1.id, session_id=s1.id, wa_chat_id="1@s.whatsapp.net"))


async def test_one_open_ticket_per_client_and_session(db: AsyncSession) -> None:
    c, s = await f.tenant(db)
    cl = f.client(c)
    db.add(cl)
    await db.flush()
    db.add(f.ticket(c, s, cl, 1))
    await db.commit()
    await _commit_fails(db, f.ticket(c, s, cl, 2, status=TicketStatus.OPEN))
    # Closed tickets do not count: history can hold many.
    first = await db.scalar(select(Ticket))
    assert first is not None
    first.status = TicketStatus.CLOSED
    await db.commit()
    db.add_all([f.ticket(c, s, cl, 2)])
    await db.commit()
    db.add(f.ticket(c, s, cl, 3, status=TicketStatus.CLOSED))
    await db.commit()


async def test_ticket_number_unique_per_company(db: AsyncSession) -> None:
    c1, s1 = await f.tenant(db)
    cl = f.client(c1)
    cl2 = f.client(c1, "+5511987654321")
    db.add_all([cl, cl2])
    await db.flush()
    db.add(f.ticket(c1, s1, cl, 7))
    await db.commit()
    await _commit_fails(db, f.ticket(c1, s1, cl2, 7))


async def test_event_seq_unique_per_company(db: AsyncSession) -> None:
    c1, _ = await f.tenant(db)
    c2, _ = await f.tenant(db)
    db.add_all([Event(company_id=c1.id, seq=1, type="t"), Event(company_id=c2.id, seq=1, type="t")])
    await db.commit()
    await _commit_fails(db, Event(company_id=c1.id, seq=1, type="t"))


async def test_department_slug_and_quick_reply_shortcuts(db: AsyncSession) -> None:
    c, _ = await f.tenant(db)
    d = Department(company_id=c.id, name="Laboratório", slug="laboratorio")
    db.add(d)
    await db.commit()
    await _commit_fails(db, Department(company_id=c.id, name="Lab 2", slug="laboratorio"))
    db.add(QuickReply(company_id=c.id, shortcut="oi", body="Olá!"))
    db.add(QuickReply(company_id=c.id, department_id=d.id, shortcut="oi", body="Olá, lab!"))
    await db.commit()
    # Company-wide shortcuts (department NULL) collide too: a partial unique index.
    await _commit_fails(db, QuickReply(company_id=c.id, shortcut="oi", body="again"))


async def test_user_email_unique_and_global_admin_shape(db: AsyncSession) -> None:
    c, _ = await f.tenant(db)
    db.add(User(email="a@x.com", name="A", password_hash="h"))  # global admin
    db.add(User(company_id=c.id, role=Role.AGENT, email="b@x.com", name="B", password_hash="h"))
    await db.commit()
    await _commit_fails(db, User(email="a@x.com", name="A2", password_hash="h"))
    # A company member needs a role; a global admin must not have one.
    await _commit_fails(db, User(company_id=c.id, email="c@x.com", name="C", password_hash="h"))
    await _commit_fails(db, User(role=Role.ADMIN, email="d@x.com", name="D", password_hash="h"))


async def test_deleting_a_company_removes_its_data_only(db: AsyncSession) -> None:
    c1, s1 = await f.tenant(db)
    c2, s2 = await f.tenant(db)
    for c, s in ((c1, s1), (c2, s2)):
        cl = f.client(c)
        db.add(cl)
        await db.flush()
        ch = f.chat(c, s, cl)
        db.add(ch)
        await db.flush()
        db.add(f.message(c, s, ch, "W1"))
        db.add(f.ticket(c, s, cl, 1))
    await db.commit()
    await db.delete(c1)
    await db.commit()
    db.expunge_all()
    assert await db.scalar(select(func.count()).select_from(Message)) == 1
    assert await db.scalar(select(func.count()).select_from(Ticket)) == 1
    assert await db.scalar(select(Message.company_id)) == c2.id


async def test_deleting_an_agent_keeps_ticket_history(db: AsyncSession) -> None:
    c, s = await f.tenant(db)
    agent = User(company_id=c.id, role=Role.AGENT, email="ag@x.com", name="Ag", password_hash="h")
    cl = f.client(c)
    db.add_all([agent, cl])
    await db.flush()
    db.add(f.ticket(c, s, cl, 1, assignee_id=agent.id))
    await db.commit()
    await db.delete(agent)
    await db.commit()
    db.expunge_all()
    t = await db.scalar(select(Ticket))
    assert t is not None and t.assignee_id is None
