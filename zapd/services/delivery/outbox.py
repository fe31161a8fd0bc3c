"""The outbox: every outbound message is a message row plus an outbox row, in one transaction.

`enqueue` is the only way anything reaches a customer (`enqueue_held`, for a batch
that inserts its rows together, writes the same two rows); it wakes the worker once
its transaction commits. The sending side (claims, rate limits, retries, dead letters)
lives in `zapd.services.delivery.outbox_worker`. The admin side here lists entries and retries
or drops them (`zapctl outbox list|retry|drop`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import MessageDirection, MessageStatus, MessageType, OutboxState, Role
from shared.errors import ErrorCode
from shared.protocol.events import MESSAGE_NEW
from zapd.db.models import Chat, Message, Outbox, Ticket
from zapd.db.types import new_id, utcnow
from zapd.errors import Conflict, NotFound
from zapd.kernel import audit, events
from zapd.kernel.context import after_commit
from zapd.kernel.held import Held
from zapd.kernel.pagination import PageParams, paginate
from zapd.kernel.principal import Actor, Principal
from zapd.services.delivery.outbox_worker import fail_message

if TYPE_CHECKING:
    from zapd.kernel.context import Kernel


def _wake_worker(session_id: uuid.UUID) -> Callable[[Kernel], None]:
    """The after-commit hook that tells the worker this session has a row due."""
    return lambda kernel: kernel.wake_outbox(session_id)


@dataclass(frozen=True)
class Enqueued:
    """A message waiting in the outbox."""

    message: Message
    outbox: Outbox | None  # None for internal notes (never sent)
    created: bool  # False when the idempotency key had been used already


async def by_key(db: AsyncSession, idempotency_key: str) -> Message | None:
    """Return the message an idempotency key already produced, if any."""
    return await db.scalar(
        select(Message)
        .join(Outbox, Outbox.message_id == Message.id)
        .where(Outbox.idempotency_key == idempotency_key)
    )


async def enqueue(
    db: AsyncSession,
    chat: Chat,
    body: str | None,
    *,
    ticket: Ticket | None = None,
    type_: MessageType = MessageType.TEXT,
    author_id: uuid.UUID | None = None,
    media_id: uuid.UUID | None = None,
    quoted_message_id: uuid.UUID | None = None,
    idempotency_key: str | None = None,
    note: bool = False,
    kind: str = "agent",  # agent, menu, system: kept in extra for the history
    extra: dict[str, Any] | None = None,  # more for the message's extra (e.g. interactive)
) -> Enqueued:
    """Create an outbound message and its outbox row (or an internal note) in this transaction.

    A repeated `idempotency_key` returns the first message and creates nothing.
    Keys are scoped by the caller (e.g. "api:<company>:<client key>").
    """
    if idempotency_key is not None:
        existing = await by_key(db, idempotency_key)
        if existing is not None:
            row = await db.scalar(select(Outbox).where(Outbox.message_id == existing.id))
            return Enqueued(existing, row, created=False)
    values, box_values = _rows(
        chat,
        body,
        ticket=ticket,
        type_=type_,
        author_id=author_id,
        media_id=media_id,
        quoted_message_id=quoted_message_id,
        idempotency_key=idempotency_key,
        note=note,
        kind=kind,
        extra=extra,
    )
    message = Message(**values)
    db.add(message)
    box: Outbox | None = None
    if box_values is not None:
        box = Outbox(**box_values)
        db.add(box)
    if idempotency_key is not None:
        await db.flush()  # a key reused concurrently fails here, at the call
    # Otherwise the rows go with the transaction's next flush (every id and timestamp a
    # caller reads is set above).
    await _announce(db, chat, ticket, values, kind)
    return Enqueued(message, box, created=True)


async def enqueue_held(
    db: AsyncSession,
    chat: Chat,
    body: str | None,
    *,
    held: Held,
    ticket: Ticket | None = None,
    kind: str = "agent",
    extra: dict[str, Any] | None = None,
) -> uuid.UUID:
    """`enqueue` a text whose two rows wait in `held` (a batch's) for its insert; its id.

    Plain rows, no ORM objects: nothing in the batch changes them afterwards. No
    idempotency key (one is checked at once: it cannot be held).
    """
    values, box_values = _rows(chat, body, ticket=ticket, kind=kind, extra=extra)
    held.add_row(Message, values)
    if box_values is not None:
        held.add_row(Outbox, box_values)
    await _announce(db, chat, ticket, values, kind)
    message_id: uuid.UUID = values["id"]
    return message_id


def _rows(
    chat: Chat,
    body: str | None,
    *,
    ticket: Ticket | None,
    type_: MessageType = MessageType.TEXT,
    author_id: uuid.UUID | None = None,
    media_id: uuid.UUID | None = None,
    quoted_message_id: uuid.UUID | None = None,
    idempotency_key: str | None = None,
    note: bool = False,
    kind: str,
    extra: dict[str, Any] | None,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The message's and the outbox row's columns (None for a note); stamps chat and ticket.

    Every id and timestamp is set here: the event and the caller name them before any
    flush. Schedules the worker's wake-up after the commit when something is to send.
    """
    now = utcnow()
    message_id = new_id()
    values: dict[str, Any] = {
        "id": message_id,
        "company_id": chat.company_id,
        "session_id": chat.session_id,
        "chat_id": chat.id,
        "ticket_id": ticket.id if ticket else None,
        "direction": MessageDirection.OUTBOUND,
        "type": type_,
        "status": MessageStatus.SENT if note else MessageStatus.QUEUED,
        "body": body,
        "media_id": media_id,
        "quoted_message_id": quoted_message_id,
        "is_note": note,
        "author_id": author_id,
        "extra": {"kind": kind, **(extra or {})},
        "created_at": now,
        "updated_at": now,
    }
    box_values: dict[str, Any] | None = None
    if not note:
        box_values = {
            "id": new_id(),
            "company_id": chat.company_id,
            "session_id": chat.session_id,
            "message_id": message_id,
            "chat_id": chat.id,
            "idempotency_key": idempotency_key or f"msg:{message_id}",
            "state": OutboxState.PENDING,
            "next_attempt_at": now,
        }
    chat.last_message_at = now
    if ticket is not None:
        ticket.last_message_at = now
    return values, box_values


async def _announce(
    db: AsyncSession,
    chat: Chat,
    ticket: Ticket | None,
    values: dict[str, Any],
    kind: str,
) -> None:
    """Publish the new message's event; wake the worker after the commit if it is to send."""
    if not values["is_note"]:
        after_commit(db, _wake_worker(chat.session_id))
    await events.for_ticket(
        db,
        chat.company_id,
        MESSAGE_NEW,
        {
            "id": values["id"],
            "ticket_id": values["ticket_id"],
            "chat_id": chat.id,
            "direction": int(values["direction"]),
            "type": int(values["type"]),
            "status": int(values["status"]),
            "body": values["body"],
            "is_note": values["is_note"],
            "author_id": values["author_id"],
            "kind": kind,
        },
        ticket,
    )


# --------------------------------------------------------------------------- admin side

DROPPED = "dropped by admin"
PREVIEW_CHARS = 80


@dataclass(frozen=True)
class OutboxView:
    """An outbox row with its message and chat; reads the row's own columns through."""

    outbox: Outbox
    message: Message
    chat: Chat

    def __getattr__(self, name: str) -> Any:
        return getattr(self.outbox, name)

    @property
    def ticket_id(self) -> uuid.UUID | None:
        """Return the ticket the message belongs to."""
        return self.message.ticket_id

    @property
    def chat_id(self) -> uuid.UUID:
        """Return the chat the message goes to."""
        return self.chat.id

    @property
    def to(self) -> str:
        """Return the WhatsApp id the message goes to."""
        return self.chat.wa_chat_id

    @property
    def preview(self) -> str | None:
        """Return the first characters of the body."""
        body = self.message.body
        if body is None or len(body) <= PREVIEW_CHARS:
            return body
        return body[: PREVIEW_CHARS - 1] + "…"

    @property
    def message_status(self) -> MessageStatus:
        """Return the message's delivery status."""
        return self.message.status


async def _views(db: AsyncSession, rows: list[Outbox]) -> list[OutboxView]:
    if not rows:
        return []
    wanted = [r.message_id for r in rows]
    messages = {m.id: m for m in await db.scalars(select(Message).where(Message.id.in_(wanted)))}
    chats = {
        c.id: c
        for c in await db.scalars(
            select(Chat).where(Chat.id.in_({m.chat_id for m in messages.values()}))
        )
    }
    out = []
    for r in rows:
        m = messages[r.message_id]
        out.append(OutboxView(r, m, chats[m.chat_id]))
    return out


async def _own(
    db: AsyncSession, p: Principal, outbox_id: uuid.UUID, *, lock: bool = False
) -> Outbox:
    row = await db.get(Outbox, outbox_id, with_for_update=lock)
    if row is None or not p.owns(row.company_id):
        raise NotFound("outbox entry not found")
    return row


async def get(db: AsyncSession, p: Principal, outbox_id: uuid.UUID) -> OutboxView:
    """Return one outbox entry of the caller's company (ADMIN), or 404."""
    row = await _own(db, p, outbox_id)
    p.require(Role.ADMIN)
    return (await _views(db, [row]))[0]


async def list_(
    db: AsyncSession,
    p: Principal,
    page: PageParams,
    *,
    state: OutboxState | None = None,
    session_id: uuid.UUID | None = None,
    company_id: uuid.UUID | None = None,
) -> tuple[list[OutboxView], str | None]:
    """Page through outbox entries (ADMIN), optionally of one state or session."""
    p.require(Role.ADMIN)
    stmt = select(Outbox)
    company = p.company_filter(company_id)
    if company is not None:
        stmt = stmt.where(Outbox.company_id == company)
    if state is not None:
        stmt = stmt.where(Outbox.state == state)
    if session_id is not None:
        stmt = stmt.where(Outbox.session_id == session_id)
    rows, cursor = await paginate(db, stmt, Outbox.id, page)
    return await _views(db, rows), cursor


def _snap(row: Outbox) -> dict[str, Any]:
    return audit.snapshot(row, ["state", "attempts", "next_attempt_at", "last_error"])


async def retry(db: AsyncSession, actor: Actor, outbox_id: uuid.UUID) -> OutboxView:
    """Send a DEAD (or waiting) entry again now, with its attempts reset (ADMIN).

    The message keeps its status (FAILED for a dead entry) until the send succeeds;
    the worker then moves it to SENT (`outbox_worker.mark_sent_after_retry`).
    """
    p = actor.principal
    row = await _own(db, p, outbox_id, lock=True)
    p.require(Role.ADMIN)
    if row.state not in (OutboxState.DEAD, OutboxState.PENDING):
        raise Conflict(
            f"only DEAD or PENDING entries can be retried; this one is {row.state.name}",
            code=ErrorCode.OUTBOX_STATE,
        )
    before = _snap(row)
    row.state = OutboxState.PENDING
    row.attempts = 0
    row.next_attempt_at = utcnow()
    row.locked_until = None
    await db.flush()
    audit.record(
        db,
        actor,
        "outbox.retry",
        "outbox",
        row.id,
        company_id=row.company_id,
        before=before,
        after=_snap(row),
        extra={"message_id": row.message_id},
    )
    after_commit(db, _wake_worker(row.session_id))
    return (await _views(db, [row]))[0]


async def drop(db: AsyncSession, actor: Actor, outbox_id: uuid.UUID) -> OutboxView:
    """Give up on a PENDING or DEAD entry: CANCELLED, its message FAILED (ADMIN)."""
    p = actor.principal
    row = await _own(db, p, outbox_id, lock=True)
    p.require(Role.ADMIN)
    if row.state not in (OutboxState.PENDING, OutboxState.DEAD):
        raise Conflict(
            f"only PENDING or DEAD entries can be dropped; this one is {row.state.name}",
            code=ErrorCode.OUTBOX_STATE,
        )
    before = _snap(row)
    row.state = OutboxState.CANCELLED
    row.locked_until = None
    message = await db.get(Message, row.message_id, with_for_update=True)
    if message is not None:
        await fail_message(db, message, DROPPED, source="admin")
    await db.flush()
    audit.record(
        db,
        actor,
        "outbox.drop",
        "outbox",
        row.id,
        company_id=row.company_id,
        before=before,
        after=_snap(row),
        extra={"message_id": row.message_id},
    )
    after_commit(db, _wake_worker(row.session_id))  # the chat's next message may go now
    return (await _views(db, [row]))[0]
