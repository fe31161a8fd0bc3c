"""The whole data model (SQLAlchemy 2, typed declarative).

Conventions:
- UUIDv7 primary keys (`new_id`), time-ordered.
- Every tenant-owned table carries `company_id` and every query filters on it.
- Enums are `IntEnumType` columns over the `IntEnum`s in `shared/enums.py`.
- Times are aware UTC (`UTCDateTime`).
- Foreign keys say what happens on delete: owned rows cascade with their owner;
  references that history must survive (an agent, a department, a category) are set
  to NULL.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CHAR,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    false,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.enums import (
    AutoAssignMode,
    ChatType,
    ClientIdentityKind,
    Engine,
    FlowState,
    LogLevel,
    MessageDirection,
    MessageStatus,
    MessageType,
    OutboxState,
    Presence,
    Priority,
    Role,
    SessionStatus,
    TicketStatus,
    WebhookEventState,
)
from zapd.db.types import IntEnumType, JSONType, UTCDateTime, new_id, utcnow

# Deterministic constraint names, so migrations can address them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base shared by every model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        uuid.UUID: Uuid(),
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
    }


def _pk() -> Mapped[uuid.UUID]:
    return mapped_column(primary_key=True, default=new_id)


def _company_fk(*, nullable: bool = False) -> Mapped[Any]:
    return mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), nullable=nullable, index=False
    )


def _created() -> Mapped[datetime]:
    return mapped_column(default=utcnow)


def _updated() -> Mapped[datetime]:
    return mapped_column(default=utcnow, onupdate=utcnow)


def _flag(default: bool) -> Mapped[bool]:
    return mapped_column(Boolean, default=default, server_default=true() if default else false())


# --------------------------------------------------------------------------- tenants


class Company(Base):
    """A customer of zap: one tenant."""

    __tablename__ = "companies"
    __table_args__ = (CheckConstraint("length(cnpj) = 14", name="cnpj_length"),)

    id: Mapped[uuid.UUID] = _pk()
    name: Mapped[str] = mapped_column(String(200))
    cnpj: Mapped[str] = mapped_column(CHAR(14), unique=True)  # digits only
    active: Mapped[bool] = _flag(True)
    timezone: Mapped[str] = mapped_column(String(64), default="America/Sao_Paulo")
    locale: Mapped[str] = mapped_column(String(16), default="pt_BR")
    # Company-wide switches: agent-name prefix, reopen window, returning-client days...
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Counters handed out under a row lock, in the transaction that uses them.
    last_event_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    last_ticket_number: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class User(Base):
    """A person who logs in: a global admin (no company) or a company member."""

    __tablename__ = "users"
    __table_args__ = (
        # A global admin has neither company nor role; a member has both.
        CheckConstraint("(company_id IS NULL) = (role IS NULL)", name="global_admin_shape"),
        CheckConstraint("max_concurrent_tickets >= 0", name="max_tickets_nonneg"),
        Index(None, "company_id", "role"),
    )

    id: Mapped[uuid.UUID] = _pk()
    company_id: Mapped[uuid.UUID | None] = _company_fk(nullable=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # stored lower-case
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role | None] = mapped_column(IntEnumType(Role), nullable=True)
    active: Mapped[bool] = _flag(True)
    max_concurrent_tickets: Mapped[int] = mapped_column(Integer, default=5)
    presence: Mapped[Presence] = mapped_column(IntEnumType(Presence), default=Presence.OFFLINE)
    presence_at: Mapped[datetime | None]
    # Bumped on disable / password change: every token minted before is dead at once.
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    password_changed_at: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    @property
    def is_global_admin(self) -> bool:
        """Tell whether this user manages companies rather than belonging to one."""
        return self.company_id is None


class Department(Base):
    """A queue customers are routed to from the greeting menu."""

    __tablename__ = "departments"
    __table_args__ = (
        UniqueConstraint("company_id", "slug"),
        UniqueConstraint("company_id", "name"),
        Index(None, "company_id", "menu_order"),
    )

    id: Mapped[uuid.UUID] = _pk()
    company_id: Mapped[uuid.UUID] = _company_fk()
    name: Mapped[str] = mapped_column(String(120))
    slug: Mapped[str] = mapped_column(String(120))
    menu_order: Mapped[int] = mapped_column(Integer, default=0)
    keywords: Mapped[list[Any]] = mapped_column(default=list)
    greeting: Mapped[str | None] = mapped_column(Text)
    out_of_hours_message: Mapped[str | None] = mapped_column(Text)
    response_timeout_seconds: Mapped[int | None] = mapped_column(Integer)
    fallback_department_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("departments.id", ondelete="SET NULL")
    )
    # {"mon": [["08:00", "18:00"]], ...}; empty means always open.
    business_hours: Mapped[dict[str, Any]] = mapped_column(default=dict)
    timezone: Mapped[str | None] = mapped_column(String(64))  # None: the company's
    auto_assign: Mapped[AutoAssignMode] = mapped_column(
        IntEnumType(AutoAssignMode), default=AutoAssignMode.OFF
    )
    active: Mapped[bool] = _flag(True)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class UserDepartment(Base):
    """Which departments' queues a user works."""

    __tablename__ = "user_departments"
    __table_args__ = (Index(None, "department_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    department_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("departments.id", ondelete="CASCADE"), primary_key=True
    )
    company_id: Mapped[uuid.UUID] = _company_fk()
    created_at: Mapped[datetime] = _created()


class Category(Base):
    """A closing reason/category for tickets."""

    __tablename__ = "categories"
    __table_args__ = (UniqueConstraint("company_id", "name"),)

    id: Mapped[uuid.UUID] = _pk()
    company_id: Mapped[uuid.UUID] = _company_fk()
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = _flag(True)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Tag(Base):
    """A free label put on tickets and clients."""

    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("company_id", "name"),)

    id: Mapped[uuid.UUID] = _pk()
    company_id: Mapped[uuid.UUID] = _company_fk()
    name: Mapped[str] = mapped_column(String(80))
    color: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = _created()


class TicketTag(Base):
    """A tag on a ticket."""

    __tablename__ = "ticket_tags"
    __table_args__ = (Index(None, "tag_id"),)

    ticket_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True
    )
    company_id: Mapped[uuid.UUID] = _company_fk()
    created_at: Mapped[datetime] = _created()


class ClientTag(Base):
    """A tag on a client."""

    __tablename__ = "client_tags"
    __table_args__ = (Index(None, "tag_id"),)

    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True
    )
    company_id: Mapped[uuid.UUID] = _company_fk()
    created_at: Mapped[datetime] = _created()


# --------------------------------------------------------------------------- customers


class Client(Base):
    """A customer who writes to the company over WhatsApp."""

    __tablename__ = "clients"
    __table_args__ = (
        UniqueConstraint("company_id", "phone"),
        Index(None, "company_id", "name"),
        Index(None, "company_id", "id"),  # the listing pages by (time-ordered) id
    )

    id: Mapped[uuid.UUID] = _pk()
    company_id: Mapped[uuid.UUID] = _company_fk()
    phone: Mapped[str | None] = mapped_column(String(20))  # canonical E.164; None if LID-only
    wa_user_id: Mapped[str | None] = mapped_column(String(128))  # e.g. 5511...@s.whatsapp.net
    lid: Mapped[str | None] = mapped_column(String(128))  # e.g. 1234...@lid
    name: Mapped[str | None] = mapped_column(String(200))  # set by an agent
    profile_name: Mapped[str | None] = mapped_column(String(200))  # WhatsApp push name
    email: Mapped[str | None] = mapped_column(String(320))
    blocked: Mapped[bool] = _flag(False)
    custom_fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    notes: Mapped[str | None] = mapped_column(Text)
    erased_at: Mapped[datetime | None]  # LGPD erasure done
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class ClientTerm(Base):
    """One searchable word of a client's names, folded (no case, no accents): the index
    that name search reads instead of scanning every client ("lucia" finds "Lúcia").

    Kept in step with `clients.name` / `profile_name` by `zapd.db.search` on every flush.
    """

    __tablename__ = "client_terms"
    __table_args__ = (Index(None, "company_id", "term"),)

    client_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True
    )
    term: Mapped[str] = mapped_column(String(64), primary_key=True)
    company_id: Mapped[uuid.UUID] = _company_fk()


class ClientIdentity(Base):
    """One way a client shows up on the wire: phone, alternate BR form, or LID."""

    __tablename__ = "client_identities"
    __table_args__ = (
        UniqueConstraint("company_id", "kind", "value"),
        # Lookups ask for values of any kind (`value IN (...)`): the unique index above
        # cannot serve them without the kind.
        Index(None, "company_id", "value"),
        Index(None, "client_id"),
    )

    id: Mapped[uuid.UUID] = _pk()
    company_id: Mapped[uuid.UUID] = _company_fk()
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    kind: Mapped[ClientIdentityKind] = mapped_column(IntEnumType(ClientIdentityKind))
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = _created()


# --------------------------------------------------------------------------- WhatsApp


class WaSession(Base):
    """A WhatsApp number connected through one engine."""

    __tablename__ = "sessions"
    __table_args__ = (
        UniqueConstraint("company_id", "phone"),
        UniqueConstraint("company_id", "name"),
        Index(None, "status"),
    )

    id: Mapped[uuid.UUID] = _pk()
    company_id: Mapped[uuid.UUID] = _company_fk()
    name: Mapped[str] = mapped_column(String(120))
    phone: Mapped[str | None] = mapped_column(String(20))  # known once linked
    engine: Mapped[Engine] = mapped_column(IntEnumType(Engine))
    status: Mapped[SessionStatus] = mapped_column(
        IntEnumType(SessionStatus), default=SessionStatus.DISCONNECTED
    )
    status_reason: Mapped[str | None] = mapped_column(Text)
    qr_code: Mapped[str | None] = mapped_column(Text)
    qr_expires_at: Mapped[datetime | None]
    pairing_code: Mapped[str | None] = mapped_column(String(16))
    auth_state_path: Mapped[str | None] = mapped_column(String(500))
    last_heartbeat_at: Mapped[datetime | None]
    webhook_url: Mapped[str | None] = mapped_column(String(2000))
    webhook_secret: Mapped[str | None] = mapped_column(String(200))
    # Engine settings (Cloud API phone_number_id, token reference...) and flow settings.
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    flow_config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    default_department_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("departments.id", ondelete="SET NULL")
    )
    active: Mapped[bool] = _flag(True)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Chat(Base):
    """A WhatsApp conversation thread on one session."""

    __tablename__ = "chats"
    __table_args__ = (
        UniqueConstraint("company_id", "session_id", "wa_chat_id"),
        # B-tree indexes serve ORDER BY ... DESC by scanning backwards.
        Index(None, "session_id", "last_message_at"),
        Index(None, "client_id"),
    )

    id: Mapped[uuid.UUID] = _pk()
    company_id: Mapped[uuid.UUID] = _company_fk()
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    client_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("clients.id", ondelete="SET NULL")
    )
    wa_chat_id: Mapped[str] = mapped_column(String(128))
    type: Mapped[ChatType] = mapped_column(IntEnumType(ChatType), default=ChatType.DIRECT)
    name: Mapped[str | None] = mapped_column(String(200))
    unread_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    archived: Mapped[bool] = _flag(False)
    last_message_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Ticket(Base):
    """One service episode: a client on a session, from first message to close."""

    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("company_id", "number"),
        # Queues ("pending in this department", "open, mine") page newest first by id.
        Index(None, "company_id", "department_id", "status", "id"),
        Index(None, "company_id", "assignee_id", "status", "id"),
        Index(None, "client_id", "session_id", "status"),
        Index(None, "status", "timeout_at"),
        Index(None, "company_id", "id"),  # listings page by (time-ordered) id
        Index(None, "company_id", "created_at"),  # metrics range scans
        Index(None, "chat_id"),  # a chat deleted (erasure, a company's removal) finds its tickets
        # Never two open tickets for one client on one session: the database says so.
        Index(
            "uq_tickets_one_open_per_client_session",
            "client_id",
            "session_id",
            unique=True,
            sqlite_where=text("status != 2"),
            postgresql_where=text("status != 2"),
        ),
    )

    id: Mapped[uuid.UUID] = _pk()
    company_id: Mapped[uuid.UUID] = _company_fk()
    number: Mapped[int] = mapped_column(BigInteger)  # per-company, human-friendly "#123"
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    session_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("sessions.id", ondelete="SET NULL")
    )
    chat_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("chats.id", ondelete="SET NULL"))
    department_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("departments.id", ondelete="SET NULL")
    )
    category_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("categories.id", ondelete="SET NULL")
    )
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    status: Mapped[TicketStatus] = mapped_column(
        IntEnumType(TicketStatus), default=TicketStatus.PENDING
    )
    flow_state: Mapped[FlowState] = mapped_column(IntEnumType(FlowState), default=FlowState.NEW)
    flow_data: Mapped[dict[str, Any]] = mapped_column(default=dict)  # menu tries, pending choice
    priority: Mapped[Priority] = mapped_column(IntEnumType(Priority), default=Priority.NORMAL)
    unread_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    reopen_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    timeout_at: Mapped[datetime | None]  # response deadline of the current department
    escalated_at: Mapped[datetime | None]
    first_response_at: Mapped[datetime | None]
    last_message_at: Mapped[datetime | None]
    last_inbound_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    closed_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Assignment(Base):
    """History of who (and which department) held a ticket, and when."""

    __tablename__ = "assignments"
    __table_args__ = (Index(None, "ticket_id", "started_at"), Index(None, "user_id", "ended_at"))

    id: Mapped[uuid.UUID] = _pk()
    company_id: Mapped[uuid.UUID] = _company_fk()
    ticket_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    department_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("departments.id", ondelete="SET NULL")
    )
    assigned_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    reason: Mapped[str | None] = mapped_column(String(64))  # accept, assign, transfer, auto...
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]


class Media(Base):
    """An uploaded or received file, stored content-addressed under the state dir."""

    __tablename__ = "media"
    __table_args__ = (Index(None, "company_id", "sha256"),)

    id: Mapped[uuid.UUID] = _pk()
    company_id: Mapped[uuid.UUID] = _company_fk()
    storage_key: Mapped[str] = mapped_column(String(300))
    mime: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(CHAR(64))
    filename: Mapped[str | None] = mapped_column(String(300))
    uploaded_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = _created()


class Message(Base):
    """One WhatsApp message (or internal note) in a chat."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("company_id", "session_id", "wa_message_id"),
        Index(None, "chat_id", "created_at"),
        Index(None, "ticket_id", "id"),  # a ticket's messages, paged by id
        Index(None, "media_id"),  # media visibility checks, ON DELETE SET NULL
        Index(None, "company_id", "created_at"),  # metrics range scans
        # ON DELETE SET NULL finds the quotes of each message deleted (retention, an
        # erasure, a company's removal): without it, one scan of messages per message.
        # Partial: most messages quote nothing, and inserting those costs nothing here.
        Index(
            None,
            "quoted_message_id",
            sqlite_where=text("quoted_message_id IS NOT NULL"),
            postgresql_where=text("quoted_message_id IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = _pk()
    company_id: Mapped[uuid.UUID] = _company_fk()
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    chat_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"))
    ticket_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL")
    )
    direction: Mapped[MessageDirection] = mapped_column(IntEnumType(MessageDirection))
    type: Mapped[MessageType] = mapped_column(IntEnumType(MessageType), default=MessageType.TEXT)
    status: Mapped[MessageStatus] = mapped_column(IntEnumType(MessageStatus))
    body: Mapped[str | None] = mapped_column(Text)
    media_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("media.id", ondelete="SET NULL"))
    wa_message_id: Mapped[str | None] = mapped_column(String(200))  # None until sent
    quoted_message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL")
    )
    is_note: Mapped[bool] = _flag(False)  # internal note: shown to agents, never sent
    author_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    error: Mapped[str | None] = mapped_column(Text)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)  # location, contact card...
    wa_timestamp: Mapped[datetime | None]  # when WhatsApp says it happened
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class MessageStatusHistory(Base):
    """Every status a message went through, with when and from which source."""

    __tablename__ = "message_status_history"
    __table_args__ = (Index(None, "message_id", "created_at"),)

    id: Mapped[uuid.UUID] = _pk()
    company_id: Mapped[uuid.UUID] = _company_fk()
    message_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    status: Mapped[MessageStatus] = mapped_column(IntEnumType(MessageStatus))
    source: Mapped[str | None] = mapped_column(String(32))  # engine name, "outbox"...
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = _created()


class PendingAck(Base):
    """An ack that arrived before its message; applied when the message lands."""

    __tablename__ = "pending_acks"
    __table_args__ = (Index(None, "company_id", "session_id", "wa_message_id"),)

    id: Mapped[uuid.UUID] = _pk()
    company_id: Mapped[uuid.UUID] = _company_fk()
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    wa_message_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[MessageStatus] = mapped_column(IntEnumType(MessageStatus))
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = _created()


class WebhookEvent(Base):
    """A raw inbound engine event, stored before processing (audit and replay)."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        Index(None, "state", "received_at"),
        Index(None, "session_id", "received_at"),
        Index(None, "company_id", "dedupe_key"),
    )

    id: Mapped[uuid.UUID] = _pk()
    company_id: Mapped[uuid.UUID] = _company_fk()
    session_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("sessions.id", ondelete="SET NULL")
    )
    engine: Mapped[Engine] = mapped_column(IntEnumType(Engine))
    event_type: Mapped[str] = mapped_column(String(64))
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column()
    state: Mapped[WebhookEventState] = mapped_column(
        IntEnumType(WebhookEventState), default=WebhookEventState.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]


class Outbox(Base):
    """One outbound message waiting for, or done with, its trip through an engine."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index(None, "state", "next_attempt_at"),
        Index(None, "session_id", "state"),
        Index(None, "company_id", "state"),
        # A row goes out after every older active row of its chat: one seek per row
        # claimed (`outbox_worker`), whatever the chat's history; and a chat's deletion
        # finds its rows.
        Index(None, "chat_id", "state", "message_id"),
    )

    id: Mapped[uuid.UUID] = _pk()
    company_id: Mapped[uuid.UUID] = _company_fk()
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    message_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), unique=True
    )
    chat_id: Mapped[uuid.UUID] = mapped_column(  # the message's (it never moves)
        ForeignKey("chats.id", ondelete="CASCADE")
    )
    idempotency_key: Mapped[str] = mapped_column(String(300), unique=True)
    state: Mapped[OutboxState] = mapped_column(
        IntEnumType(OutboxState), default=OutboxState.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    max_attempts: Mapped[int] = mapped_column(Integer, default=8)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class SessionLog(Base):
    """What happened to a session: connects, QR rotations, errors."""

    __tablename__ = "session_logs"
    __table_args__ = (Index(None, "session_id", "id"),)

    id: Mapped[uuid.UUID] = _pk()
    company_id: Mapped[uuid.UUID] = _company_fk()
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    level: Mapped[LogLevel] = mapped_column(IntEnumType(LogLevel), default=LogLevel.INFO)
    event: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = _created()


class QuickReply(Base):
    """A canned answer an agent expands with `/shortcut`."""

    __tablename__ = "quick_replies"
    __table_args__ = (
        UniqueConstraint("company_id", "department_id", "shortcut"),
        # NULL department means company-wide; NULLs never collide in a plain unique.
        Index(
            "uq_quick_replies_company_wide_shortcut",
            "company_id",
            "shortcut",
            unique=True,
            sqlite_where=text("department_id IS NULL"),
            postgresql_where=text("department_id IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = _pk()
    company_id: Mapped[uuid.UUID] = _company_fk()
    department_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("departments.id", ondelete="CASCADE")
    )
    shortcut: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


# --------------------------------------------------------------------------- operations


class AuditLog(Base):
    """Who changed what, when, from where; written with the change it records."""

    __tablename__ = "audit_log"
    __table_args__ = (
        # Paged newest-first by id (UUIDv7, so id order is time order).
        Index(None, "company_id", "id"),
        Index(None, "company_id", "user_id", "id"),
        Index(None, "company_id", "action", "id"),
        Index(None, "company_id", "entity_type", "entity_id"),
    )

    id: Mapped[uuid.UUID] = _pk()
    company_id: Mapped[uuid.UUID | None] = _company_fk(nullable=True)  # None: global action
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    api_token_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("api_tokens.id", ondelete="SET NULL")
    )
    action: Mapped[str] = mapped_column(String(64))  # "ticket.transfer", "user.create"...
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[uuid.UUID | None]
    ip: Mapped[str | None] = mapped_column(String(45))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"before": .., "after": ..}
    created_at: Mapped[datetime] = _created()


class Event(Base):
    """The realtime log: per-company, strictly increasing `seq`, replayable."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("company_id", "seq"),
        Index(None, "created_at"),
    )

    id: Mapped[uuid.UUID] = _pk()
    company_id: Mapped[uuid.UUID] = _company_fk()
    seq: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(64))  # "message.new", "ticket.update"...
    # Audience hints, so a replay can filter without decoding `data`.
    department_id: Mapped[uuid.UUID | None]
    user_id: Mapped[uuid.UUID | None]
    # About a ticket or a conversation: the hints are the ticket's, and the ticket rule of
    # `zapd.kernel.visibility` applies (no hints then means supervisors only).
    scoped: Mapped[bool] = _flag(False)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = _created()


class ApiToken(Base):
    """A long-lived token for scripts, scoped to a company and a role."""

    __tablename__ = "api_tokens"
    __table_args__ = (Index(None, "company_id"),)

    id: Mapped[uuid.UUID] = _pk()
    company_id: Mapped[uuid.UUID] = _company_fk()
    name: Mapped[str] = mapped_column(String(120))
    prefix: Mapped[str] = mapped_column(String(16))  # shown in listings: "zap_AbC1..."
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[Role] = mapped_column(IntEnumType(Role))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()


class RefreshToken(Base):
    """A single-use refresh token; a family shares one login, reuse kills the family."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (Index(None, "family_id"), Index(None, "user_id"))

    id: Mapped[uuid.UUID] = _pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    company_id: Mapped[uuid.UUID | None] = _company_fk(nullable=True)
    family_id: Mapped[uuid.UUID]
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(300))
