"""The agent's view of zapd, kept in memory: tickets, chats and pending sends.

Pure data, no Textual: the app feeds it REST snapshots and stream events, the widgets
read it. Invariants:
- A ticket is known once (by id); an event about it updates that one row in place.
- A chat holds each message once (by id); a message that arrives twice (REST page and
  stream, or a stream replay after a reconnect) is merged, never duplicated, and its
  status only moves forward (`MessageStatus.can_advance_to`).
- Messages typed while zapd is unreachable are `Pending` entries with an idempotency key
  chosen when they were typed: sending one twice makes one message on the daemon, and the
  pending entry is replaced by the real message when the daemon answers.
- Nothing here blocks or does I/O; every method is O(changed rows) except `sorted_rows`.
- A ticket on a Cloud API session carries its 24-hour service window once a
  `GET /tickets/{id}` answered it (list pages and events do not carry it): the row keeps
  the last one known, and its state (open / closing soon / closed) is computed from
  `expires_at` and the clock when shown, so it closes on screen without an event.
"""

from __future__ import annotations

import bisect
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from shared.enums import (
    MessageDirection,
    MessageStatus,
    MessageType,
    Priority,
    Role,
    TicketStatus,
)
from shared.protocol.auth import Me
from shared.protocol.departments import DepartmentOut
from shared.protocol.events import (
    MESSAGE_NEW,
    MESSAGE_STATUS,
    TICKET_NEW,
    TICKET_UPDATE,
    TYPING,
    EventEnvelope,
)
from shared.protocol.tickets import (
    TICKET_ESCALATED,
    DepartmentRef,
    MessageOut,
    ServiceWindow,
    TicketOut,
    UserRef,
)
from zaptui.i18n import t

PREVIEW_CHARS = 120
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
WINDOW_CLOSING = timedelta(hours=2)  # a window with less than this left is "closing soon"


class WindowState(StrEnum):
    """Where a Cloud API ticket's 24-hour window stands for free-form messages."""

    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


def _system_now() -> datetime:
    return datetime.now(UTC)


_now: Callable[[], datetime] = _system_now


def utcnow() -> datetime:
    """The current time (UTC) as the UI shows it (waiting times, local lines)."""
    return _now()


def set_clock(now: Callable[[], datetime] | None) -> None:
    """Use another clock (a fixed one for snapshots); None restores the system clock."""
    global _now
    _now = now or _system_now


def _uuid(value: Any) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


# --------------------------------------------------------------------------- tickets


@dataclass
class TicketRow:
    """One ticket as the list shows it."""

    ticket: TicketOut
    preview: str | None = None  # the last message's first characters
    preview_inbound: bool = False
    typing: str | None = None  # who is typing on it right now (a name)
    recording: bool = False  # ... a voice note rather than text (the customer, WhatsApp Web)
    version: int = 0  # bumped on every change (widgets cache renders by it)
    window: ServiceWindow | None = None  # Cloud API only: the last 24-hour window known

    def window_state(self, now: datetime | None = None) -> tuple[WindowState, timedelta] | None:
        """Return the window's state and the time left in it (None: not a Cloud ticket)."""
        w = self.window
        if w is None:
            return None
        if w.expires_at is None:  # the customer never wrote on this number
            return WindowState.CLOSED, timedelta(0)
        expires = w.expires_at if w.expires_at.tzinfo else w.expires_at.replace(tzinfo=UTC)
        left = expires - (now or utcnow())
        if left <= timedelta(0):
            return WindowState.CLOSED, timedelta(0)
        return (WindowState.CLOSING if left <= WINDOW_CLOSING else WindowState.OPEN), left

    @property
    def id(self) -> uuid.UUID:
        return self.ticket.id

    @property
    def client_label(self) -> str:
        c = self.ticket.client
        return c.name or c.profile_name or c.phone or "?"

    def waiting_since(self) -> datetime | None:
        """When the customer started waiting for an answer (None: not waiting)."""
        t = self.ticket
        if t.status == TicketStatus.PENDING:
            return t.created_at
        if t.status == TicketStatus.OPEN and t.unread_count > 0:
            return t.last_inbound_at or t.last_message_at
        return None


@dataclass
class Counts:
    """Per-department counters of the sidebar."""

    waiting: int = 0
    mine: int = 0


# --------------------------------------------------------------------------- chats


@dataclass
class ChatItem:
    """One line-group of the chat pane: a message, a note, or a system line."""

    key: str  # message id, "pending:<idempotency key>" or "sys:<n>"
    created_at: datetime
    direction: MessageDirection
    type: MessageType
    status: MessageStatus
    body: str | None
    is_note: bool = False
    kind: str = "agent"  # agent | menu | system (from the message), local (an event line)
    author_id: uuid.UUID | None = None
    author: str | None = None
    media_id: uuid.UUID | None = None
    error: str | None = None
    pending: bool = False  # typed offline / not yet acknowledged by zapd
    version: int = 0

    @property
    def sort_key(self) -> tuple[datetime, str]:
        return (self.created_at, self.key)

    @classmethod
    def of(cls, m: MessageOut) -> ChatItem:
        kind = str(m.extra.get("kind") or "agent") if m.extra else "agent"
        if m.type == MessageType.SYSTEM:
            kind = "system"
        return cls(
            key=str(m.id),
            created_at=m.created_at if m.created_at.tzinfo else m.created_at.replace(tzinfo=UTC),
            direction=m.direction,
            type=m.type,
            status=m.status,
            body=m.body,
            is_note=m.is_note,
            kind=kind,
            author_id=m.author_id,
            media_id=m.media_id,
            error=m.error,
        )


@dataclass
class Chat:
    """The messages of one ticket known so far, oldest first."""

    ticket_id: uuid.UUID
    items: list[ChatItem] = field(default_factory=list)
    by_key: dict[str, ChatItem] = field(default_factory=dict)
    older_cursor: str | None = None  # where the next older page starts
    complete: bool = False  # the oldest message is loaded
    loaded: bool = False  # the first (newest) page is loaded
    version: int = 0

    def add(self, item: ChatItem) -> bool:
        """Insert or merge one item; tell whether anything changed."""
        known = self.by_key.get(item.key)
        if known is not None:
            return self._merge(known, item)
        self.by_key[item.key] = item
        keys = self.items
        if not keys or keys[-1].sort_key <= item.sort_key:
            keys.append(item)
        else:
            bisect.insort(keys, item, key=lambda i: i.sort_key)
        self.version += 1
        return True

    def add_older(self, items: list[ChatItem]) -> int:
        """Prepend an older page (any order); return how many items were new."""
        fresh = [i for i in items if i.key not in self.by_key]
        if not fresh:
            return 0
        for i in fresh:
            self.by_key[i.key] = i
        self.items = sorted([*fresh, *self.items], key=lambda i: i.sort_key)
        self.version += 1
        return len(fresh)

    def _merge(self, known: ChatItem, new: ChatItem) -> bool:
        changed = False
        if known.status != new.status and known.status.can_advance_to(new.status):
            known.status = new.status
            changed = True
        if new.error and new.error != known.error:
            known.error = new.error
            changed = True
        if known.pending and not new.pending:
            known.pending = False
            changed = True
        if changed:
            known.version += 1
            self.version += 1
        return changed

    def set_status(self, key: str, status: MessageStatus, error: str | None) -> bool:
        item = self.by_key.get(key)
        if item is None:
            return False
        if not item.status.can_advance_to(status):
            return False
        item.status = status
        if error:
            item.error = error
        item.version += 1
        self.version += 1
        return True

    def remove(self, key: str) -> None:
        item = self.by_key.pop(key, None)
        if item is not None:
            self.items.remove(item)
            self.version += 1


@dataclass
class Pending:
    """A message typed by the agent, not yet accepted by zapd."""

    key: str  # the idempotency key, chosen when typed
    ticket_id: uuid.UUID
    body: str | None
    note: bool = False
    media_path: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    attempts: int = 0
    error: str | None = None

    @property
    def chat_key(self) -> str:
        return f"pending:{self.key}"


# --------------------------------------------------------------------------- the store


@dataclass
class Change:
    """What one event changed, for the screen to redraw only that."""

    tickets: set[uuid.UUID] = field(default_factory=set)  # rows changed
    chats: set[uuid.UUID] = field(default_factory=set)  # chats changed
    fetch: set[uuid.UUID] = field(default_factory=set)  # tickets to (re)fetch in full
    notify: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (i18n key, fields)
    typing: set[uuid.UUID] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.tickets or self.chats or self.fetch or self.notify or self.typing)


class Inbox:
    """Everything the agent sees, fed by REST snapshots and stream events."""

    def __init__(self, me: Me) -> None:
        self.me = me
        self.departments: dict[uuid.UUID, DepartmentOut] = {}
        self.rows: dict[uuid.UUID, TicketRow] = {}
        self.chats: dict[uuid.UUID, Chat] = {}
        self.pending: dict[str, Pending] = {}
        self.names: dict[uuid.UUID, str] = {}  # user id -> name
        if me.id is not None:
            self.names[me.id] = me.name
        self.version = 0
        self._sys = 0

    # ------------------------------------------------------------------ reading

    @property
    def is_supervisor(self) -> bool:
        return self.me.is_global_admin or self.me.role in (Role.ADMIN, Role.SUPERVISOR)

    def my_departments(self) -> list[DepartmentOut]:
        """The sidebar's departments: the agent's own, or all for supervisors and admins."""
        deps = sorted(self.departments.values(), key=lambda d: (d.menu_order, d.name))
        if self.is_supervisor:
            return deps
        mine = set(self.me.department_ids)
        return [d for d in deps if d.id in mine]

    def counts(self) -> dict[uuid.UUID | None, Counts]:
        """Waiting / mine per department (key None: all departments together)."""
        out: dict[uuid.UUID | None, Counts] = {None: Counts()}
        me = self.me.id
        for row in self.rows.values():
            t = row.ticket
            dep = t.department.id if t.department else None
            c = out.setdefault(dep, Counts())
            if t.status == TicketStatus.PENDING:
                c.waiting += 1
                out[None].waiting += 1
            elif t.status == TicketStatus.OPEN and t.assignee and t.assignee.id == me:
                c.mine += 1
                out[None].mine += 1
        return out

    def sorted_rows(self, view: str, department_id: uuid.UUID | None) -> list[TicketRow]:
        """The rows of a sidebar view, in list order.

        `view`: "queue" (waiting), "mine" (open and mine), "all" (waiting then open),
        "closed". Waiting tickets come first, most urgent then longest waiting; open ones
        by their last message, newest first.
        """
        me = self.me.id
        out: list[TicketRow] = []
        for row in self.rows.values():
            t = row.ticket
            if department_id is not None and (
                t.department is None or t.department.id != department_id
            ):
                continue
            if view == "queue" and t.status != TicketStatus.PENDING:
                continue
            if view == "mine" and not (
                t.status == TicketStatus.OPEN and t.assignee is not None and t.assignee.id == me
            ):
                continue
            if view == "all" and t.status == TicketStatus.CLOSED:
                continue
            if view == "closed" and t.status != TicketStatus.CLOSED:
                continue
            out.append(row)

        def key(r: TicketRow) -> tuple[int, int, float]:
            t = r.ticket
            if t.status == TicketStatus.PENDING:
                return (0, -int(t.priority), t.created_at.timestamp())
            last = t.last_message_at or t.updated_at
            return (1 if t.status == TicketStatus.OPEN else 2, -int(t.priority), -last.timestamp())

        out.sort(key=key)
        return out

    def waits_for_me(self, ticket: TicketOut) -> bool:
        """Tell whether a ticket waits in a queue this person serves (worth a notification)."""
        if ticket.status != TicketStatus.PENDING or ticket.department is None:
            return False
        return self.is_supervisor or ticket.department.id in self.me.department_ids

    # ------------------------------------------------------------------ snapshots

    def set_departments(self, deps: list[DepartmentOut]) -> None:
        self.departments = {d.id: d for d in deps}
        self.version += 1

    def put_ticket(self, ticket: TicketOut) -> TicketRow:
        """Insert or replace a ticket's data (a REST answer is the truth about it)."""
        row = self.rows.get(ticket.id)
        if row is None:
            row = self.rows[ticket.id] = TicketRow(ticket)
        else:
            row.ticket = ticket
            row.version += 1
        if ticket.service_window is not None:  # only GET /tickets/{id} answers it
            row.window = ticket.service_window
        if ticket.assignee is not None:
            self.names[ticket.assignee.id] = ticket.assignee.name
        self.version += 1
        return row

    def chat(self, ticket_id: uuid.UUID) -> Chat:
        chat = self.chats.get(ticket_id)
        if chat is None:
            chat = self.chats[ticket_id] = Chat(ticket_id)
            for p in self.pending.values():
                if p.ticket_id == ticket_id:
                    chat.add(self._pending_item(p))
        return chat

    def put_messages(self, ticket_id: uuid.UUID, page: list[MessageOut], *, older: bool) -> int:
        """Merge one page of history; return how many messages were new."""
        chat = self.chat(ticket_id)
        items = [self._named(ChatItem.of(m)) for m in page]
        if older:
            return chat.add_older(items)
        return sum(1 for i in items if chat.add(i))

    def set_preview(self, ticket_id: uuid.UUID, m: MessageOut | None) -> None:
        row = self.rows.get(ticket_id)
        if row is None or m is None or row.preview is not None:
            return
        row.preview = _preview(m.body, m.type)
        row.preview_inbound = m.direction == MessageDirection.INBOUND
        row.version += 1

    def _named(self, item: ChatItem) -> ChatItem:
        if item.author_id is not None:
            item.author = self.names.get(item.author_id)
        return item

    # ------------------------------------------------------------------ pending sends

    def add_pending(self, p: Pending) -> None:
        self.pending[p.key] = p
        if p.ticket_id in self.chats:
            self.chats[p.ticket_id].add(self._pending_item(p))

    def settle_pending(self, key: str, sent: MessageOut) -> None:
        """zapd accepted a pending message: the real message replaces the placeholder."""
        p = self.pending.pop(key, None)
        chat = self.chats.get(sent.ticket_id or (p.ticket_id if p else uuid.UUID(int=0)))
        if chat is None:
            return
        if p is not None:
            chat.remove(p.chat_key)
        chat.add(self._named(ChatItem.of(sent)))

    def fail_pending(self, key: str, error: str) -> None:
        p = self.pending.get(key)
        if p is None:
            return
        p.error = error
        chat = self.chats.get(p.ticket_id)
        item = chat.by_key.get(p.chat_key) if chat else None
        if item is not None and chat is not None:
            item.error = error
            item.version += 1
            chat.version += 1

    def _pending_item(self, p: Pending) -> ChatItem:
        return ChatItem(
            key=p.chat_key,
            created_at=p.created_at,
            direction=MessageDirection.OUTBOUND,
            type=MessageType.DOCUMENT if p.media_path else MessageType.TEXT,
            status=MessageStatus.QUEUED,
            body=p.body if not p.media_path else f"{p.media_path}\n{p.body or ''}".strip(),
            is_note=p.note,
            author_id=self.me.id,
            author=self.me.name,
            pending=True,
            error=p.error,
        )

    def system_line(self, ticket_id: uuid.UUID, text: str, at: datetime | None = None) -> None:
        """Add a local line (a transfer, an assignment...) to a loaded chat."""
        chat = self.chats.get(ticket_id)
        if chat is None or not chat.loaded:
            return
        self._sys += 1
        chat.add(
            ChatItem(
                key=f"sys:{self._sys}",
                created_at=at or utcnow(),
                direction=MessageDirection.OUTBOUND,
                type=MessageType.SYSTEM,
                status=MessageStatus.SENT,
                body=text,
                kind="local",
            )
        )

    # ------------------------------------------------------------------ events

    def apply(self, event: EventEnvelope) -> Change:
        """Apply one stream event; say what changed."""
        change = Change()
        d = event.data
        if event.type in (TICKET_NEW, TICKET_UPDATE):
            self._ticket_event(event.type, d, change)
        elif event.type == MESSAGE_NEW:
            self._message_event(d, change)
        elif event.type == MESSAGE_STATUS:
            tid = _uuid(d.get("ticket_id"))
            chat = self.chats.get(tid) if tid else None
            if chat is not None and chat.set_status(
                str(d.get("id")), MessageStatus(int(d.get("status", 0))), d.get("error")
            ):
                change.chats.add(chat.ticket_id)
        elif event.type == TYPING:
            tid = _uuid(d.get("ticket_id"))
            row = self.rows.get(tid) if tid else None
            if row is not None:
                row.typing = str(d.get("name") or "…") if d.get("typing") else None
                row.recording = bool(row.typing and d.get("recording"))
                row.version += 1
                change.typing.add(row.id)
                change.tickets.add(row.id)
        elif event.type == TICKET_ESCALATED:
            tid = _uuid(d.get("id"))
            change.notify.append(("notify.escalated", {"number": d.get("number", "?")}))
            if tid is not None:
                change.fetch.add(tid)
        if change:
            self.version += 1
        return change

    def _ticket_event(self, kind: str, d: dict[str, Any], change: Change) -> None:
        tid = _uuid(d.get("id"))
        if tid is None:
            return
        row = self.rows.get(tid)
        action = d.get("action")
        if row is None:
            change.fetch.add(tid)
            return
        t = row.ticket
        updates: dict[str, Any] = {}
        if "status" in d:
            updates["status"] = TicketStatus(int(d["status"]))
        if "unread_count" in d:
            updates["unread_count"] = int(d["unread_count"])
        dep_id = _uuid(d.get("department_id"))
        if "department_id" in d and (t.department.id if t.department else None) != dep_id:
            dep = self.departments.get(dep_id) if dep_id else None
            if dep_id is None:
                updates["department"] = None
            elif dep is None:
                change.fetch.add(tid)  # a department this person does not know (yet)
            else:
                updates["department"] = DepartmentRef(id=dep.id, name=dep.name)
        who = _uuid(d.get("assignee_id"))
        if "assignee_id" in d and (t.assignee.id if t.assignee else None) != who:
            name = self.names.get(who) if who else None
            if who is None:
                updates["assignee"] = None
            elif name is None:
                change.fetch.add(tid)  # somebody whose name is not known here
            else:
                updates["assignee"] = UserRef(id=who, name=name)
        at = _when(d.get("at"))
        if at is not None:
            updates["updated_at"] = at
        if action in ("update", "reopen", "escalate") or "priority" in d:
            change.fetch.add(tid)
        if updates:
            was_waiting_here = self.waits_for_me(t)
            row.ticket = t.model_copy(update=updates)
            row.version += 1
            change.tickets.add(tid)
            if not was_waiting_here and self.waits_for_me(row.ticket):
                change.notify.append(("notify.new_ticket", {"number": row.ticket.number}))
        if action and tid in self.chats:
            text = _action_line(str(action), row, self)
            if text:
                self.system_line(tid, text, at)
                change.chats.add(tid)

    def _message_event(self, d: dict[str, Any], change: Change) -> None:
        tid = _uuid(d.get("ticket_id"))
        if tid is None:
            return
        direction = MessageDirection(int(d.get("direction", 0)))
        mtype = MessageType(int(d.get("type", 0)))
        body = d.get("body")
        row = self.rows.get(tid)
        if row is not None and not d.get("is_note"):
            row.preview = _preview(body, mtype)
            row.preview_inbound = direction == MessageDirection.INBOUND
            now = utcnow()
            t = row.ticket
            updates: dict[str, Any] = {"last_message_at": now}
            if direction == MessageDirection.INBOUND:
                updates["last_inbound_at"] = now
                if row.window is not None:
                    change.fetch.add(tid)  # the customer wrote: the window moved (ask zapd)
            row.ticket = t.model_copy(update=updates)
            row.version += 1
            change.tickets.add(tid)
        if direction == MessageDirection.INBOUND and row is not None:
            a = row.ticket.assignee
            if a is not None and a.id == self.me.id:
                change.notify.append(
                    ("notify.message", {"name": row.client_label, "number": row.ticket.number})
                )
        chat = self.chats.get(tid)
        if chat is None or not chat.loaded:
            return
        author = _uuid(d.get("author_id"))
        item = ChatItem(
            key=str(d.get("id")),
            created_at=utcnow(),
            direction=direction,
            type=mtype,
            status=MessageStatus(int(d.get("status", 0))),
            body=body,
            is_note=bool(d.get("is_note")),
            kind="system" if mtype == MessageType.SYSTEM else str(d.get("kind") or "agent"),
            author_id=author,
            author=self.names.get(author) if author else None,
            media_id=_uuid(d.get("media_id")),
        )
        if chat.add(item):
            change.chats.add(tid)


def _preview(body: str | None, mtype: MessageType) -> str:
    text = (body or "").replace("\n", " ").strip()
    if mtype not in (MessageType.TEXT, MessageType.SYSTEM):
        label = t(f"media.{mtype.name.lower()}")
        text = f"▣ {label} {text}".strip()
    return text[:PREVIEW_CHARS]


def _action_line(action: str, row: TicketRow, inbox: Inbox) -> str | None:
    tk = row.ticket
    dep = tk.department.name if tk.department else "—"
    who = tk.assignee.name if tk.assignee else "—"
    key = f"system.{action}"
    text = t(key, department=dep, agent=who, number=tk.number)
    return None if text == key else text


PRIORITY_ORDER = [Priority.URGENT, Priority.HIGH, Priority.NORMAL, Priority.LOW]
