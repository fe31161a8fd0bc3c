"""Fixed data for the snapshot tests: a busy queue and a chat with every kind of line.

Everything is pinned (ids, names, times, the clock), so the SVG snapshots only change
when the rendering does.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.enums import (
    AutoAssignMode,
    FlowState,
    MessageDirection,
    MessageStatus,
    MessageType,
    Priority,
    Role,
    TicketStatus,
)
from shared.protocol.auth import Me
from shared.protocol.departments import DepartmentOut
from shared.protocol.tickets import (
    ClientSummary,
    DepartmentRef,
    MessageOut,
    TicketOut,
    UserRef,
)
from zaptui.model import Inbox, Pending

NOW = datetime(2026, 12, 6, 14, 0, 0, tzinfo=UTC)
COMPANY = uuid.UUID(int=1)
SESSION = uuid.UUID(int=2)
ME = uuid.UUID(int=10)
BRUNO = uuid.UUID(int=11)
DEPS = {
    "Laboratório": uuid.UUID(int=100),
    "Comercial": uuid.UUID(int=101),
    "Financeiro": uuid.UUID(int=102),
    "Administrativo": uuid.UUID(int=103),
}
CHAT_TICKET = uuid.UUID(int=1000)


def _id(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


def department(name: str, order: int) -> DepartmentOut:
    return DepartmentOut(
        id=DEPS[name],
        company_id=COMPANY,
        name=name,
        slug=name.lower(),
        menu_order=order,
        keywords=[],
        greeting=None,
        out_of_hours_message=None,
        response_timeout_seconds=None,
        fallback_department_id=None,
        business_hours={},
        timezone=None,
        auto_assign=AutoAssignMode.OFF,
        active=True,
        created_at=NOW,
        updated_at=NOW,
    )


def ticket(
    n: int,
    name: str,
    phone: str,
    dep: str,
    status: TicketStatus,
    *,
    mine: bool = False,
    other: bool = False,
    priority: Priority = Priority.NORMAL,
    unread: int = 0,
    minutes: int = 5,
) -> TicketOut:
    created = NOW - timedelta(minutes=minutes)
    assignee = (
        UserRef(id=ME, name="Ana Atendente")
        if mine
        else (UserRef(id=BRUNO, name="Bruno") if other else None)
    )
    return TicketOut(
        id=_id(1000 + n),
        company_id=COMPANY,
        number=40 + n,
        status=status,
        flow_state=FlowState.ROUTED if status == TicketStatus.PENDING else FlowState.DONE,
        priority=priority,
        unread_count=unread,
        reopen_count=0,
        client=ClientSummary(id=_id(5000 + n), name=name, phone=phone),
        session_id=SESSION,
        chat_id=_id(7000 + n),
        department=DepartmentRef(id=DEPS[dep], name=dep),
        assignee=assignee,
        category_id=None,
        timeout_at=None,
        escalated_at=None,
        first_response_at=None,
        last_message_at=created + timedelta(minutes=1),
        last_inbound_at=created + timedelta(minutes=1),
        closed_at=None,
        closed_by_id=None,
        created_at=created,
        updated_at=created,
    )


def message(
    n: int,
    minutes_ago: float,
    body: str | None,
    *,
    inbound: bool = False,
    type_: MessageType = MessageType.TEXT,
    status: MessageStatus | None = None,
    note: bool = False,
    kind: str = "agent",
    author: uuid.UUID | None = None,
    media: bool = False,
    error: str | None = None,
) -> MessageOut:
    extra: dict[str, Any] = {} if inbound else {"kind": kind}
    return MessageOut(
        id=_id(9000 + n),
        ticket_id=CHAT_TICKET,
        chat_id=_id(7000),
        session_id=SESSION,
        direction=MessageDirection.INBOUND if inbound else MessageDirection.OUTBOUND,
        type=type_,
        status=status
        if status is not None
        else (MessageStatus.RECEIVED if inbound else MessageStatus.SENT),
        body=body,
        is_note=note,
        author_id=author,
        media_id=_id(8000 + n) if media else None,
        wa_message_id=None,
        quoted_message_id=None,
        error=error,
        extra=extra,
        wa_timestamp=None,
        created_at=NOW - timedelta(minutes=minutes_ago),
    )


def me(role: Role = Role.AGENT) -> Me:
    return Me(
        id=ME,
        email="ana@demo.zap.br",
        name="Ana Atendente",
        company_id=COMPANY,
        role=role,
        is_global_admin=False,
        department_ids=[DEPS["Laboratório"], DEPS["Comercial"]],
    )


def busy_inbox() -> Inbox:
    """Twelve tickets across departments, statuses, priorities; one chat of every kind."""
    inbox = Inbox(me())
    inbox.set_departments([department(n, i) for i, n in enumerate(DEPS, start=1)])
    P, O = TicketStatus.PENDING, TicketStatus.OPEN  # noqa: E741
    rows = [
        ticket(
            0, "Maria Souza", "+5511987650001", "Laboratório", O, mine=True, unread=2, minutes=42
        ),
        ticket(
            1, "João Lima", "+5511987650002", "Comercial", P, priority=Priority.URGENT, minutes=17
        ),
        ticket(
            2,
            "Fernanda Alves",
            "+5511987650003",
            "Laboratório",
            P,
            priority=Priority.HIGH,
            minutes=9,
        ),
        ticket(3, "Carlos Pereira", "+5521987650004", "Comercial", P, minutes=3),
        ticket(4, "Juliana Costa", "+5531987650005", "Laboratório", O, mine=True, minutes=120),
        ticket(5, "Pedro Rocha", "+5511912340006", "Laboratório", O, other=True, minutes=65),
        ticket(
            6, "Luiza Martins", "+5511912340007", "Comercial", P, priority=Priority.LOW, minutes=1
        ),
        ticket(
            7, "Rafael Gomes", "+5511912340008", "Comercial", O, mine=True, unread=5, minutes=30
        ),
        ticket(8, "Beatriz Nunes", "+5511912340009", "Laboratório", P, minutes=26),
        ticket(9, "+55 11 91234-0010", "+5511912340010", "Comercial", P, minutes=2),
    ]
    previews = [
        ("Quero saber do resultado do meu exame", True),
        ("Quanto custa o check-up completo?", True),
        ("A coleta precisa de jejum?", True),
        ("Vocês atendem convênio?", True),
        ("Perfeito, obrigada!", False),
        ("Posso remarcar para amanhã?", True),
        ("Bom dia", True),
        ("Segue o comprovante", True),
        ("▣ Imagem", True),
        ("Olá", True),
    ]
    for tk, (text, inbound) in zip(rows, previews, strict=True):
        row = inbox.put_ticket(tk)
        row.preview, row.preview_inbound = text, inbound
    inbox.rows[_id(1007)].typing = "Rafael Gomes"
    inbox.names[BRUNO] = "Bruno"
    chat_inbox(inbox)
    return inbox


def chat_inbox(inbox: Inbox) -> None:
    """Fill the chat of ticket #40 (Maria) with every message kind and tick state."""
    msgs = [
        message(1, 40, "Oi, bom dia!", inbound=True),
        message(
            2,
            39.9,
            "Olá, Maria! Bem-vindo(a) à Clínica Vida.\n*1* - Laboratório\n*2* - Comercial",
            kind="menu",
            status=MessageStatus.READ,
        ),
        message(3, 39, "1", inbound=True),
        message(4, 38, "Você está na fila de *Laboratório*.", kind="system"),
        message(5, 30, "Segue o pedido médico", inbound=True, type_=MessageType.IMAGE, media=True),
        message(6, 29, None, inbound=True, type_=MessageType.AUDIO, media=True),
        message(
            7,
            20,
            "Bom dia, Maria! Recebi o pedido. O resultado do hemograma sai em até 2 dias úteis; "
            "vou conferir se já está disponível no sistema e te aviso por aqui mesmo.",
            author=ME,
            status=MessageStatus.READ,
        ),
        message(8, 15, "Paciente pediu urgência", note=True, author=ME),
        message(9, 12, "Já está disponível!", author=ME, status=MessageStatus.DELIVERED),
        message(
            10,
            11,
            "Segue o laudo",
            author=ME,
            type_=MessageType.DOCUMENT,
            media=True,
            status=MessageStatus.SENT,
        ),
        message(11, 9, "Quero saber do resultado do meu exame", inbound=True),
        message(
            12,
            5,
            "Posso ajudar em algo mais?",
            author=ME,
            status=MessageStatus.FAILED,
            error="131047: re-engagement window closed",
        ),
        message(13, 2, "Um instante, por favor", author=ME, status=MessageStatus.QUEUED),
    ]
    tid = CHAT_TICKET
    inbox.put_messages(tid, msgs, older=False)
    chat = inbox.chat(tid)
    chat.loaded = True
    chat.complete = True
    inbox.system_line(
        tid, "Ticket transferido para Laboratório · Ana Atendente", NOW - timedelta(minutes=37)
    )
    inbox.add_pending(
        Pending(
            key="k1",
            ticket_id=tid,
            body="Mensagem digitada sem conexão",
            created_at=NOW - timedelta(minutes=1),
        )
    )
