"""Minimal valid rows for database tests."""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.cnpj import cnpj_check_digits
from shared.enums import Engine, MessageDirection, MessageStatus
from zapd.db.models import Chat, Client, Company, Message, Ticket, WaSession

_counter = itertools.count(10_000_000)


def cnpj() -> str:
    """Return a fresh valid CNPJ."""
    base = f"{next(_counter):08d}0001"
    return base + cnpj_check_digits(base)


def company(**kw: Any) -> Company:
    return Company(**{"name": "Acme", "cnpj": cnpj(), **kw})


def session(c: Company, **kw: Any) -> WaSession:
    return WaSession(
        **{"company_id": c.id, "name": f"s{next(_counter)}", "engine": Engine.SANDBOX, **kw}
    )


def client(c: Company, phone: str = "+5511912345678", **kw: Any) -> Client:
    return Client(**{"company_id": c.id, "phone": phone, **kw})


def chat(c: Company, s: WaSession, cl: Client | None = None, **kw: Any) -> Chat:
    return Chat(
        **{
            "company_id": c.id,
            "session_id": s.id,
            "client_id": cl.id if cl else None,
            "wa_chat_id": f"{next(_counter)}@s.whatsapp.net",
            **kw,
        }
    )


def message(c: Company, s: WaSession, ch: Chat, wa_id: str | None = None, **kw: Any) -> Message:
    return Message(
        **{
            "company_id": c.id,
            "session_id": s.id,
            "chat_id": ch.id,
            "direction": MessageDirection.INBOUND,
            "status": MessageStatus.RECEIVED,
            "body": "oi",
            "wa_message_id": wa_id,
            **kw,
        }
    )


def ticket(c: Company, s: WaSession, cl: Client, number: int, **kw: Any) -> Ticket:
    return Ticket(
        **{
            "company_id": c.id,
            "session_id": s.id,
            "client_id": cl.id,
            "number": number,
            **kw,
        }
    )


async def tenant(db: AsyncSession) -> tuple[Company, WaSession]:
    """Flush a company and a session of it."""
    c = company()
    db.add(c)
    await db.flush()
    s = session(c)
    db.add(s)
    await db.flush()
    return c, s
