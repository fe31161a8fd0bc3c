"""The inbound pipeline: raw event stored first, then processed once, in order per sender.

receive ─► webhook_events row committed (durable; a webhook may answer 2xx now)
        └► process ─► client (E.164, BR 9th digit, LID → one client)
                    ─► chat upsert ─► message insert (deduped on wa_message_id)
                    ─► open ticket found, or reopened within the window, or created
                    ─► greeting-menu flow ─► replies queued in the outbox
                    ─► counters, realtime events

Processing runs in its own transaction and is retried when a uniqueness race is lost
(two deliveries of one message, two first messages of one client): the retry finds
what the winner committed. An event that fails deterministically is marked FAILED
with its error (poison) and the rest go on. An event that fails transiently (the
database went away, a deadlock, SQLite busy: `zapd.kernel.transient`) stays PENDING and
is retried in-process with backoff until the database answers: its sender's later
events queue behind it (order per sender holds), and once every deferred event is done
a sweep processes whatever else was left pending (a raw event whose commit succeeded
although its request saw an error). Unprocessed events are also processed at start-up.

Batching (per company): raw events arriving together are committed in one
transaction (group commit; each caller still gets its row only once it is durable),
and stored events are processed in batches of up to MAX_BATCH, one transaction each.
No batch waits for a window: a leader runs one as soon as the previous is done. An
event received is stored *with* its processing: its caller takes its sender's lock
first, then waits for one transaction that inserts the batch's raw events and
processes them (`_store_and_process`; run straight, it commits all of them processed
or nothing, so the raw rows go in PROCESSED and no UPDATE marks them after); it is
answered once that commits, so an event waits for at most the batch running when it
arrived and its own. If that
transaction fails for any reason, nothing of it committed: the raw events are
group-committed on their own, then processed as any batch below (a poison event never
keeps its raw event, or its neighbours', from being stored). An event whose sender
has events deferred (below), and `store` (parked events), take the two steps: a
group commit, then the batch holding what it stored (its callers queue first). On
SQLite (one writer) one leader per company runs the group commits too, in turn with
the batches; on PostgreSQL they have a leader of their own, beside the batches'. A
crash after a commit and before its callers are answered leaves events the engine
delivers again: stored again and deduplicated, as ever.
A batch holds at most one event per sender (the caller keeps its sender's lock while
it waits), so per-sender order is the order of the batches. A batch first runs
straight through; if anything fails it is rolled back and run again with one savepoint
per event, so a poison event is marked FAILED alone and a lost race is retried alone
(with the per-event rules above; both counted, `reruns` and `alone`, for `bench
ingest`). Event seqs are taken once per batch, at its end. A
batch reads its senders' clients, open tickets and chats at once (`_View`): that
snapshot lives in the batch's transaction only, follows the batch's own writes, and
is dropped when a savepoint rolls back; nothing is cached across transactions, so a
ticket closed, a client merged or erased, a menu edited elsewhere is seen by the next
batch. Run straight through, a batch holds every row it creates (inbound messages,
clients and their identities, chats, tickets, menu replies and their outbox rows; ids
made client-side; `zapd.kernel.held`) and inserts them at its end with one executemany
per table, parents first, then writes its changes to the chats and tickets it loaded
the same way: a redelivery or a quote of a message earlier in the batch is looked up
among the held rows first, and whatever must query or flush mid-batch (a reopen, a
message from the phone, media, an ack or a contact, a sender the view does not cover)
inserts the held rows first. Anything failing then fails the whole straight run (and
the careful rerun writes each row in its event's savepoint, as before). On PostgreSQL
that insert is one statement (`zapd.kernel.held`) which also carries the batch's event
rows (numbered just before it with one counter UPDATE), the ticket numbers given back,
the changes to the chats and tickets it loaded and the PROCESSED mark. A straight run
takes the ticket numbers its newcomers will need with one counter UPDATE and gives the
unused ones back before its commit (`_Numbers`: gapless, the company row stays locked
from the first UPDATE to the commit); the careful rerun takes them one by one. On
SQLite the batch does not lock the company row (one writer; a company deleted before
the batch began took its stored rows with it), and its held rows and PROCESSED mark
ride with the next statement's thread trip (`zapd.db.sqlite_driver.writes_behind`).
The view reads the company row, the batch's sessions and the active departments in
one statement, and its reads in two rounds (one SQLite thread trip each; on
PostgreSQL one statement, one round trip, each: `zapd.kernel.txsql.rows_all`); on SQLite
a straight run counts its ticket numbers and event seqs from the counters that row
held (BEGIN IMMEDIATE: no other writer until the commit, and nothing else in the
batch moves them) and moves each counter once, by what it used, behind; a stale
read could only be refused by the (company, number) / (company, seq) unique indexes.
The batch's statements are built once, with bound parameters; on SQLite its fixed
reads and counter writes run on the transaction's driver connection, past the
session's layers (`zapd.kernel.txsql`: rows and persistent entities as a query gives);
on PostgreSQL so do its fixed reads (the pending rows' one included), its counter
UPDATEs and its one-statement insert, on the transaction's asyncpg connection
(`zapd.kernel.pgtx`; lists as arrays: one prepared statement each).
Messages sent from the phone stay ORM rows (their early acks apply to them).
`process_events` (a Cloud webhook's events) and the retry of deferred events keep the
per-row path.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    Table,
    Update,
    Uuid,
    and_,
    any_,
    bindparam,
    exists,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import (
    ChatType,
    Engine,
    FlowState,
    MessageDirection,
    MessageStatus,
    TicketStatus,
    WebhookEventState,
)
from shared.phone import InvalidPhone, jid_to_e164, normalize_phone, parse_jid
from shared.protocol.events import MESSAGE_NEW, TICKET_NEW, TICKET_UPDATE
from zapd.connectors.events import (
    AckEvent,
    AnyEngineEvent,
    ContactEvent,
    MessageEvent,
    dump_event,
    load_event,
)
from zapd.db.models import (
    Chat,
    Client,
    Company,
    Department,
    Message,
    Ticket,
    WaSession,
    WebhookEvent,
)
from zapd.db.types import new_id, utcnow
from zapd.domain.flow import Customer, DepartmentInfo, Flow, FlowConfig, Step
from zapd.domain.texts import session_overrides
from zapd.errors import NotFound
from zapd.kernel import events
from zapd.kernel.held import Held, insert_rows, insert_under, write_changes
from zapd.kernel.scoping import next_ticket_number
from zapd.kernel.transient import is_transient
from zapd.kernel.txsql import TxStatement, rows_all
from zapd.services.conversations.menus import menu_messages
from zapd.services.conversations.received_media import store_received
from zapd.services.delivery import acks, outbox
from zapd.services.people import identity
from zapd.services.people.companies import settings_of
from zapd.services.people.identity import Identity
from zapd.services.people.known import Known
from zapd.services.tickets import lifecycle
from zapd.services.tickets.queries import ticket_event

if TYPE_CHECKING:
    from zapd.kernel.context import Kernel

log = logging.getLogger("zapd.inbound")

MAX_RACE_RETRIES = 5
RETRY_FIRST_DELAY = 0.2  # seconds before the first in-process retry after a transient failure
RETRY_MAX_DELAY = 5.0
MAX_PARKED = 100_000  # acks and contacts held in memory while the database is away
MAX_BATCH = 100  # stored events processed (or raw events committed) in one transaction
_FLOW_CACHE = "zap_inbound_flow"  # db.info: flow configuration read in this transaction
_FRESH = "zap_inbound_fresh"  # db.info: (session, wa id) known absent when the batch began
_VIEW = "zap_inbound_view"  # db.info: the batch's `_View`
_MESSAGES = "zap_inbound_messages"  # db.info: message rows inserted at the batch's end
_HELD = "zap_inbound_held"  # db.info: the straight run's `Held` (new rows, one insert)
_NUMBERS = "zap_inbound_numbers"  # db.info: the straight run's ticket numbers taken ahead


# A ticket in these flow states answers the menu: its next message runs the flow.
_AWAITING = frozenset({FlowState.AWAITING_MENU_CHOICE, FlowState.AWAITING_ROUTING_CONFIRMATION})

# The batch's statements, built once (bound parameters; lists expand at execution).
_PENDING = TxStatement(
    select(WebhookEvent.id)
    .where(
        WebhookEvent.id.in_(bindparam("ids", expanding=True)),
        WebhookEvent.state == WebhookEventState.PENDING,
    )
    .with_for_update()
)
_EXISTING = TxStatement(
    select(Message.session_id, Message.wa_message_id).where(
        Message.company_id == bindparam("company_id"),
        Message.session_id.in_(bindparam("sessions", expanding=True)),
        Message.wa_message_id.in_(bindparam("wa_ids", expanding=True)),
    )
)
_OPEN_TICKETS = TxStatement(
    select(Ticket).where(
        Ticket.client_id.in_(bindparam("clients", expanding=True)),
        Ticket.session_id.in_(bindparam("sessions", expanding=True)),
        Ticket.status != TicketStatus.CLOSED,
    )
)
_CHATS = TxStatement(
    select(Chat).where(
        Chat.company_id == bindparam("company_id"),
        Chat.session_id.in_(bindparam("sessions", expanding=True)),
        Chat.wa_chat_id.in_(bindparam("jids", expanding=True)),
    )
)
_PROCESSED = TxStatement(
    update(WebhookEvent)
    .where(WebhookEvent.id.in_(bindparam("ids", expanding=True)))
    .values(
        state=WebhookEventState.PROCESSED,
        processed_at=bindparam("now", type_=WebhookEvent.__table__.c.processed_at.type),
        attempts=WebhookEvent.attempts + 1,
    )
    .execution_options(synchronize_session=False)
)
# PostgreSQL: `_PENDING` and `_LOCK_COMPANY` in one statement. The uncorrelated EXISTS
# is a one-time filter run before any row is scanned: the company is held (KEY SHARE)
# before any stored row is locked, as `_lock_company` first; when it is gone (deleted,
# taking its stored rows with it) nothing is found.
_PENDING_UNDER_COMPANY = TxStatement(
    select(WebhookEvent.id)
    .where(
        WebhookEvent.id == any_(bindparam("ids", type_=ARRAY(Uuid()))),
        WebhookEvent.state == WebhookEventState.PENDING,
        exists(
            select(Company.id)
            .where(Company.id == bindparam("company_id"))
            .with_for_update(read=True, key_share=True)
        ),
    )
    .with_for_update(of=WebhookEvent)
)
# PostgreSQL: `_PROCESSED` with the ids as one array, for `Held.also` (no expanding list).
_PROCESSED_ALL = (
    update(WebhookEvent)
    .where(WebhookEvent.id == any_(bindparam("ids", type_=ARRAY(Uuid()))))
    .values(
        state=WebhookEventState.PROCESSED,
        processed_at=bindparam("now", type_=WebhookEvent.__table__.c.processed_at.type),
        attempts=WebhookEvent.attempts + 1,
    )
)
_WITH_DEPARTMENTS = TxStatement(  # the company, the batch's sessions, active departments
    select(Company, WaSession, Department)
    .outerjoin(
        WaSession,
        and_(
            WaSession.company_id == Company.id,
            WaSession.id.in_(bindparam("sessions", expanding=True)),
        ),
    )
    .outerjoin(Department, and_(Department.company_id == Company.id, Department.active.is_(True)))
    .where(Company.id == bindparam("company_id"))
)
_COUNT_NUMBERS = (  # moves the ticket counter (`_Numbers`)
    update(Company)
    .where(Company.id == bindparam("company_id"))
    .values(last_ticket_number=Company.last_ticket_number + bindparam("count"))
    .execution_options(synchronize_session=False)
)
_LOCK_COMPANY = (  # read+key_share is FOR KEY SHARE (key_share alone: NO KEY UPDATE)
    select(Company.id)
    .where(Company.id == bindparam("company_id"))
    .with_for_update(read=True, key_share=True)
)
_TAKE_NUMBERS = TxStatement(_COUNT_NUMBERS.returning(Company.last_ticket_number))
_MOVE_NUMBERS = TxStatement(_COUNT_NUMBERS)
_GIVE_BACK = (
    update(Company)
    .where(Company.id == bindparam("company_id"), Company.last_ticket_number == bindparam("last"))
    .values(last_ticket_number=Company.last_ticket_number - bindparam("unused"))
    .execution_options(synchronize_session=False)
)


def sender_of(ev: MessageEvent | ContactEvent) -> Identity:
    """Work out the canonical phone and LID behind an event.

    An event's sender is looked up several times on its way (its lock key, the batch's
    view, its client): the parse is cached on the raw fields (a pure function of them).
    """
    if isinstance(ev, MessageEvent):
        return _identity(ev.sender_jid, ev.sender_lid, ev.sender_phone, ev.sender_bsuid)
    return _identity(ev.jid, ev.lid, ev.phone, ev.bsuid)


@functools.lru_cache(maxsize=4096)
def _identity(jid_text: str, lid: str | None, phone_raw: str | None, bsuid: str | None) -> Identity:
    phone: str | None = None
    try:
        jid = parse_jid(jid_text)
        if jid.is_lid:
            lid = lid or f"{jid.user}@lid"
        elif jid.is_user:
            phone = jid_to_e164(jid)
        elif jid.is_bsuid:
            bsuid = bsuid or jid.user
    except InvalidPhone:
        pass
    if phone is None and phone_raw:
        try:
            phone = normalize_phone(phone_raw, strict=False)
        except InvalidPhone:
            phone = None
    return Identity(phone=phone, lid=lid, bsuid=bsuid)


async def _lock_company(db: AsyncSession, company_id: uuid.UUID) -> bool:
    """Hold the company (KEY SHARE) before anything else; False when it is gone.

    Taken first, it orders this transaction against a company delete (which locks the
    company row FOR UPDATE before its cascade): one waits for the other, no deadlock.
    """
    found = await db.scalar(_LOCK_COMPANY, {"company_id": company_id})
    return found is not None


# Turns a stored raw engine body (e.g. a Cloud API webhook) into events, by its row id.
RawHandler = Callable[[uuid.UUID], Awaitable[None]]


def _sender_key(event: AnyEngineEvent) -> str:
    """The key events are ordered by: one sender of one session."""
    key = f"{event.session_id}:"
    if isinstance(event, MessageEvent | ContactEvent):
        key += sender_of(event).key
    return key


async def _unhold(db: AsyncSession) -> None:
    """Insert the straight run's held rows now: what comes next may query or flush."""
    held: Held | None = db.info.get(_HELD)
    if held:
        await held.insert(db)


def _opened(db: AsyncSession, client_id: uuid.UUID, session_id: uuid.UUID, t: Ticket) -> None:
    """Tell the batch's view (if any) that the client's ticket in the session is open."""
    view: _View | None = db.info.get(_VIEW)
    if view is not None:
        view.open[(client_id, session_id)] = t


@dataclass
class _Numbers:
    """Ticket numbers a straight run took ahead with one counter UPDATE.

    `first..last` are this transaction's (the company row stays locked from the UPDATE
    to the commit, as for one number); what is left unused is given back before the
    commit, so numbers stay gapless. On SQLite (`read` set: the counter the view read)
    no UPDATE runs before the end: numbers follow `read` in memory and `give_back`
    moves the counter by the count used, behind. A careful rerun takes them one by
    one: a savepoint rolling back would undo the counter, not this memory.
    """

    wanted: int  # tickets the batch will likely create from here on (a guess)
    first: int = 1
    last: int = 0
    # SQLite: the counter as this transaction read it (BEGIN IMMEDIATE: no other writer
    # until the commit). Numbers are then counted from it in memory and the counter is
    # moved once, by what was used, with a write that rides with the next trip.
    read: int | None = None
    used: int = 0

    async def take(self, db: AsyncSession, company_id: uuid.UUID) -> int:
        """Return the next number, taking `wanted` (at least one) more when none is left."""
        if self.read is not None:
            self.used += 1
            return self.read + self.used
        if self.first > self.last:
            count = max(1, self.wanted)
            # No flush first (TxStatement runs none): the counter depends on nothing held.
            found = await _TAKE_NUMBERS.rows(db, {"company_id": company_id, "count": count})
            if not found:
                raise NotFound("company not found")
            last = found[0][0]
            self.first, self.last = int(last) - count + 1, int(last)
        number = self.first
        self.first += 1
        self.wanted = max(0, self.wanted - 1)
        return number

    async def give_back(
        self, db: AsyncSession, company_id: uuid.UUID, held: Held | None = None
    ) -> None:
        """Return the numbers not used (they are the counter's last ones).

        SQLite: move the counter by the numbers used instead (behind: next trip).
        With `held` (PostgreSQL), the UPDATE goes with its insert (`Held.also`).
        """
        if self.read is not None:
            if self.used:
                await _MOVE_NUMBERS.run(
                    db, {"company_id": company_id, "count": self.used}, behind=True
                )
                self.read, self.used = self.read + self.used, 0
            return
        unused = self.last - self.first + 1
        if unused <= 0:
            return
        params = {"company_id": company_id, "last": self.last, "unused": unused}
        if held is not None:
            held.also(_GIVE_BACK, params)
        else:
            await db.execute(_GIVE_BACK, params)
        self.last = self.first - 1


# A batch member: what to do, and the future its caller waits on.
_Waiting = tuple[Any, "asyncio.Future[Any]"]
_Queues = dict[uuid.UUID, list[_Waiting]]  # per company, what waits for its batch


def _settle(
    fut: asyncio.Future[Any], result: Any = None, error: BaseException | None = None
) -> None:
    """Give a waiting caller its result or error (unless it stopped waiting)."""
    if fut.done():
        return
    if error is None:
        fut.set_result(result)
    elif isinstance(error, asyncio.CancelledError):
        fut.cancel()
    else:
        fut.set_exception(error)


@dataclass
class _View:
    """What a batch read at once (clients, open tickets, chats of its senders; the company).

    Valid only inside the batch transaction, and kept up to date by the batch's own
    writes; dropped (db.info) when an event's savepoint rolls back or an event writes
    identities some other way, after which the per-event queries answer.
    """

    known: Known
    open_clients: set[uuid.UUID]  # clients whose open tickets (in `sessions`) were read
    sessions: set[uuid.UUID]
    open: dict[tuple[uuid.UUID, uuid.UUID], Ticket]  # (client, session) -> open ticket
    chat_keys: set[tuple[uuid.UUID, str]]  # (session, wa chat id) read
    chats: dict[tuple[uuid.UUID, str], Chat]
    # Clients this batch created: no ticket of theirs exists beyond what the view holds.
    created: set[uuid.UUID] = field(default_factory=set)
    company: Company | None = None  # read with the view (held: the identity map is weak)
    wa_sessions: list[WaSession] = field(default_factory=list)  # the same, for the flow
    departments: list[Department] | None = None  # active ones, read with the view
    batch: list[MessageEvent] = field(default_factory=list)

    def newcomers(self) -> int:
        """Guess how many of the batch's messages come from senders with no client yet."""
        return sum(
            1
            for ev in self.batch
            if not ev.from_me
            and self.known.covers(sender_of(ev))
            and not self.known.find_ids(sender_of(ev))
        )

    @classmethod
    async def read(
        cls,
        db: AsyncSession,
        company_id: uuid.UUID,
        batch: list[MessageEvent],
        messages: set[tuple[uuid.UUID, str]],
    ) -> tuple[_View, set[tuple[uuid.UUID, str]]]:
        """Read what the batch's messages will look up; also which of `messages` exist.

        Two rounds of independent reads (on SQLite one thread trip each, on
        PostgreSQL one statement each: `zapd.kernel.txsql.rows_all`): the stored
        messages among `messages`, the senders' identities and clients by phone, the
        chats, the company with the batch's sessions and the active departments; then
        the identity owners not yet read and the open tickets of every client found.
        """
        known, reads = Known.prepare(company_id, [sender_of(ev) for ev in batch])
        sessions = sorted({ev.session_id for ev in batch})
        chat_keys = {(ev.session_id, ev.chat_jid) for ev in batch}
        first = await rows_all(
            db,
            [
                (
                    _EXISTING,
                    {
                        "company_id": company_id,
                        "sessions": sorted({s for s, _ in messages}),
                        "wa_ids": [w for _, w in messages],
                    },
                ),
                (
                    _CHATS,
                    {
                        "company_id": company_id,
                        "sessions": sessions,
                        "jids": sorted({jid for _, jid in chat_keys}),
                    },
                ),
                # The company (settings, flow, counters), the batch's sessions (flow) and
                # the active departments (flow): one statement, not one `get` each later.
                (_WITH_DEPARTMENTS, {"company_id": company_id, "sessions": sessions}),
                *reads,
            ],
        )
        existing, chat_rows, head, *known_rows = first
        known.absorb(known_rows)
        clients = known.client_ids()
        second: list[tuple[TxStatement, dict[str, Any]]] = []
        owners = known.owners_read()
        if owners is not None:
            second.append(owners)
        if clients:
            second.append((_OPEN_TICKETS, {"clients": sorted(clients), "sessions": sessions}))
        found = await rows_all(db, second) if second else []
        if owners is not None:
            known.absorb_owners(found.pop(0))
        opened: dict[tuple[uuid.UUID, uuid.UUID], Ticket] = {}
        for ticket in found[0] if clients else ():
            if ticket.session_id is not None:
                opened[(ticket.client_id, ticket.session_id)] = ticket
        chats = {(chat.session_id, chat.wa_chat_id): chat for chat in chat_rows}
        view = cls(known, clients, set(sessions), opened, chat_keys, chats, batch=batch)
        departments: dict[uuid.UUID, Department] = {}
        for company, wa_session, department in head:
            view.company = company
            if wa_session is not None and wa_session not in view.wa_sessions:
                view.wa_sessions.append(wa_session)
            if department is not None:
                departments[department.id] = department
        view.departments = list(departments.values())
        return view, {(r[0], r[1]) for r in existing}


class _Split(Exception):
    """A row of several events failed as a whole: each is to be received on its own."""


def _mark_failed(row_id: uuid.UUID, error: str, now: datetime) -> Update:
    """The statement that marks a stored event FAILED (poison) with its error."""
    return (
        update(WebhookEvent)
        .where(WebhookEvent.id == row_id)
        .values(
            state=WebhookEventState.FAILED,
            error=error[:2000],
            attempts=WebhookEvent.attempts + 1,
            processed_at=now,
        )
        .execution_options(synchronize_session=False)
    )


class Inbound:
    """Stores and processes engine events for every session of the daemon."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._company: dict[uuid.UUID, uuid.UUID] = {}  # a session's company never changes
        self._engine: dict[uuid.UUID, Engine] = {}
        # Stored rows that are not engine events but an engine's raw body (e.g. a Cloud
        # API webhook): their event_type names who turns them into events.
        self.raw_handlers: dict[str, RawHandler] = {}
        self.processed = 0
        self.failed = 0
        # Batches whose straight run failed and was run again (careful, or stored first),
        # and events then processed alone: each is correct, but slow (bench ingest).
        self.reruns = 0
        self.alone = 0
        self.deferred_total = 0  # events whose processing was put off by a transient failure
        # Per sender key, the events put off by a transient failure, oldest first.
        self._deferred: dict[str, list[uuid.UUID]] = {}
        self._retry_task: asyncio.Task[None] | None = None
        self._sweep_needed = False
        # Engine events nobody redelivers (acks, contacts) that could not be stored yet.
        self._parked: deque[tuple[uuid.UUID, AnyEngineEvent]] = deque()
        # Companies being deleted: their events are refused (their sessions are stopping).
        self.closing: set[uuid.UUID] = set()
        # Per company, raw events waiting for their group commit and stored events
        # waiting for their batch; the leader tasks that run those batches, by
        # (company, queue); on SQLite one leader runs both queues (queue None).
        self._storing: _Queues = {}
        self._combined: _Queues = {}  # SQLite: raw events to commit with their processing
        self._processing: _Queues = {}
        self._leading: dict[tuple[uuid.UUID, bool | None], asyncio.Task[None]] = {}
        self._leaders: set[asyncio.Task[None]] = set()
        self._one_writer = kernel.engine.dialect.name == "sqlite"

    # ------------------------------------------------------------------ intake

    async def receive(self, session_id: uuid.UUID, event: AnyEngineEvent) -> uuid.UUID | None:
        """Store an engine event durably, then process it; return the stored row id.

        When the raw event cannot be committed the error propagates (the caller must not
        acknowledge); a transient one also schedules a sweep, since its commit may have
        gone through although the answer was lost. The event is committed with its
        processing when it can be (`_store_and_process`): its sender's lock is taken
        first, and the return means both are durable. An event whose sender has events
        deferred is committed on its own, then queued behind those.
        """
        try:
            found = await self._raw_row(session_id, event)
            if found is None:
                return None
            company_id, row = found
            row_id: uuid.UUID = row["id"]
            key = _sender_key(event)
            async with self._lock(key):
                if not self._deferred.get(key):  # else: stored, then queued behind those
                    if not await self._group(self._combined, company_id, (row, event)):
                        self._defer(key, row_id)
                    return row_id
            row_id = await self._group(self._storing, company_id, row)
        except NotFound:
            if isinstance(event, MessageEvent):
                raise
            log.info("%s event for a session that is gone dropped", event.kind)
            return None
        except Exception as exc:
            if not is_transient(exc):
                raise
            self._sweep_needed = True
            self._kick()
            if isinstance(event, MessageEvent):
                raise
            # Acks and contact updates are not redelivered by anyone: keep them in
            # memory and store them once the database answers.
            self._park(session_id, event)
            return None
        await self.process(row_id, known=(company_id, event))
        return row_id

    async def store(self, session_id: uuid.UUID, event: AnyEngineEvent) -> uuid.UUID | None:
        """Commit the raw event (the only step that must succeed before acknowledging)."""
        found = await self._raw_row(session_id, event)
        if found is None:
            return None
        stored: uuid.UUID = await self._group(self._storing, *found)
        return stored

    async def _raw_row(
        self, session_id: uuid.UUID, event: AnyEngineEvent
    ) -> tuple[uuid.UUID, dict[str, Any]] | None:
        """The company and the row storing `event`; None for an unknown session."""
        company_id = await self._company_of(session_id)
        if company_id is None:
            log.warning("event for unknown session %s dropped", session_id)
            return None
        if company_id in self.closing:
            raise NotFound("session not found: its company is being deleted")
        return company_id, {
            "id": new_id(),
            "company_id": company_id,
            "session_id": session_id,
            "engine": self._engine.get(session_id, Engine.SANDBOX),
            "event_type": event.kind,
            "dedupe_key": getattr(event, "wa_message_id", None),
            "payload": dump_event(event),
            "state": WebhookEventState.PENDING,
            "attempts": 0,
            "received_at": utcnow(),
        }

    async def _store_rows(self, company_id: uuid.UUID, batch: list[_Waiting]) -> None:
        """Commit a group of raw events in one transaction (group commit), settling each.

        A group that fails for a reason other than the database or the company being
        gone is retried one event at a time, so one bad row cannot refuse the others.
        """
        try:
            if self._one_writer:
                async with self.kernel.tx() as db:
                    if not await _lock_company(db, company_id):
                        for row, _ in batch:
                            self._company.pop(row["session_id"], None)
                        raise NotFound("session not found")
                    await db.execute(insert(WebhookEvent), [row for row, _ in batch])
            else:
                # PostgreSQL: one statement, outside any transaction (it commits by
                # itself), holding the company first as `_lock_company` does.
                async with self.kernel.statement() as conn:
                    stored = await insert_under(
                        conn,
                        cast(Table, WebhookEvent.__table__),
                        [row for row, _ in batch],
                        cast(Table, Company.__table__),
                        company_id,
                    )
                if not stored:
                    for row, _ in batch:
                        self._company.pop(row["session_id"], None)
                    raise NotFound("session not found")
        except Exception as exc:
            if len(batch) > 1 and not isinstance(exc, NotFound) and not is_transient(exc):
                for one in batch:
                    await self._store_rows(company_id, [one])
                return
            for _, fut in batch:
                _settle(fut, error=exc)
            return
        for row, fut in batch:
            _settle(fut, row["id"])

    async def _group(self, queues: _Queues, company_id: uuid.UUID, item: Any) -> Any:
        """Queue `item` for its company's next batch and wait for its result.

        A leader task runs the batches one after the other; whatever arrives while a
        batch runs goes into the next (no added wait when idle).
        """
        loop = asyncio.get_running_loop()
        key = (company_id, None if self._one_writer else queues is self._storing)
        leader = self._leading.get(key)
        if leader is not None and leader is asyncio.current_task():
            raise RuntimeError("an inbound batch would wait for a batch of its own leader")
        fut: asyncio.Future[Any] = loop.create_future()
        queues.setdefault(company_id, []).append((item, fut))
        if leader is None:
            leader = loop.create_task(self._lead(*key))
            self._leading[key] = leader
            self._leaders.add(leader)
            leader.add_done_callback(self._leaders.discard)
        return await fut

    async def _lead(self, company_id: uuid.UUID, storing: bool | None) -> None:
        """Run a company's batches until its queues are empty.

        `storing` True runs the raw group commits (PostgreSQL), False the
        stored-and-processed batches and the batches of events stored before
        (PostgreSQL); None (SQLite, one writer at a time) runs all three in turn: a
        group commit, a combined batch, then the batch that holds what the group commit
        stored. Its callers are let queue their processing
        before that batch is taken (their write would otherwise wait behind a batch of
        older events, then wait for its own: two batches instead of one). Nothing a
        batch runs may queue on its own leader (it would wait for itself): that raises.
        """
        runs: list[tuple[_Queues, Callable[[uuid.UUID, list[_Waiting]], Awaitable[None]]]] = []
        if storing is not False:
            runs.append((self._storing, self._store_rows))
        if storing is not True:
            runs.append((self._combined, self._store_and_process))
            runs.append((self._processing, self._process_batch))
        batch: list[_Waiting] = []
        try:
            while True:
                ran = False
                for queues, run in runs:
                    queue = queues.get(company_id)
                    if not queue:
                        continue
                    batch, queue[:] = queue[:MAX_BATCH], queue[MAX_BATCH:]
                    await run(company_id, batch)
                    batch, ran = [], True
                    if storing is None and queues is self._storing:
                        await asyncio.sleep(0)  # the callers just settled queue their events
                if not ran:
                    for queues, _ in runs:
                        if queues.get(company_id) == []:
                            del queues[company_id]
                    self._leading.pop((company_id, storing), None)
                    return
        except BaseException as exc:  # a bug or a cancellation: nobody may wait forever
            self._leading.pop((company_id, storing), None)
            for queues, _ in runs:
                batch += queues.pop(company_id, [])
            for _, fut in batch:
                _settle(fut, error=exc)
            if not isinstance(exc, Exception):
                raise
            log.exception("inbound batch leader failed")

    async def seen(self, session_id: uuid.UUID, wa_message_id: str) -> bool:
        """Tell whether a message with this WhatsApp id is already stored for the session.

        An intake answers such a redelivery as a duplicate (it is stored raw for the
        audit, and its processing changes nothing: the message is never stored twice).
        """
        company_id = await self._company_of(session_id)
        if company_id is None:
            return False
        async with self.kernel.read() as db:
            found = await db.scalar(
                select(Message.id).where(
                    Message.company_id == company_id,
                    Message.session_id == session_id,
                    Message.wa_message_id == wa_message_id,
                )
            )
        return found is not None

    async def _company_of(self, session_id: uuid.UUID) -> uuid.UUID | None:
        cached = self._company.get(session_id)
        if cached is not None:
            return cached
        async with self.kernel.read() as db:
            found = (
                await db.execute(
                    select(WaSession.company_id, WaSession.engine).where(WaSession.id == session_id)
                )
            ).first()
        if found is None:
            return None
        self._company[session_id], self._engine[session_id] = found[0], found[1]
        return found[0]

    async def recover(self, batch: int = 500) -> int:
        """Process every stored event not yet processed, oldest first (start, sweeps).

        A page of stored rows is read at once and split into lanes, one per sender
        (in order within each) plus one for raw bodies and unreadable rows; the lanes
        run side by side so their events share batches. Stops early when the database
        fails transiently (the in-process retry takes over); events already waiting
        in the retry queue are left to it.
        """
        done = 0
        after: tuple[Any, uuid.UUID] | None = None
        while True:
            query = (
                select(
                    WebhookEvent.received_at,
                    WebhookEvent.id,
                    WebhookEvent.company_id,
                    WebhookEvent.event_type,
                    WebhookEvent.payload,
                )
                .where(WebhookEvent.state == WebhookEventState.PENDING)
                .order_by(WebhookEvent.received_at, WebhookEvent.id)
                .limit(batch)
            )
            if after is not None:
                query = query.where(tuple_(WebhookEvent.received_at, WebhookEvent.id) > after)
            async with self.kernel.read() as db:
                rows = list((await db.execute(query)).all())
            if not rows:
                return done
            after = (rows[-1][0], rows[-1][1])
            waiting = {i for q in self._deferred.values() for i in q}
            lanes: dict[str, list[tuple[uuid.UUID, tuple[uuid.UUID, AnyEngineEvent] | None]]]
            lanes = {}
            for _, row_id, company_id, event_type, payload in rows:
                if row_id in waiting:
                    continue
                event: AnyEngineEvent | None = None
                if event_type not in self.raw_handlers:
                    try:
                        event = load_event(payload)
                    except ValueError:
                        event = None  # `process` reads it again and poisons it
                if event is None:
                    lanes.setdefault("", []).append((row_id, None))
                else:
                    lanes.setdefault(_sender_key(event), []).append((row_id, (company_id, event)))
            count, failed = await self._recover_lanes(list(lanes.values()))
            done += count
            if failed:
                return done  # the database is failing: the retry loop goes on later

    async def _recover_lanes(
        self, lanes: list[list[tuple[uuid.UUID, tuple[uuid.UUID, AnyEngineEvent] | None]]]
    ) -> tuple[int, bool]:
        """Run the lanes side by side; return how many were processed, and if the db failed."""
        deferred, sweep = self.deferred_total, self._sweep_needed

        def failing() -> bool:
            return self.deferred_total != deferred or (self._sweep_needed and not sweep)

        async def lane(
            entries: list[tuple[uuid.UUID, tuple[uuid.UUID, AnyEngineEvent] | None]],
        ) -> int:
            count = 0
            for row_id, known in entries:
                if failing():
                    break
                await self.process(row_id, known=known)
                count += 0 if failing() else 1
            return count

        counts = await asyncio.gather(*(lane(e) for e in lanes))
        return sum(counts), failing()

    # ------------------------------------------------------------------ processing

    async def process(
        self, row_id: uuid.UUID, known: tuple[uuid.UUID, AnyEngineEvent] | None = None
    ) -> None:
        """Process one stored event exactly once (ordered per sender, retried on races).

        `known` (company id and event) spares re-reading a row that was just stored;
        the state check inside the processing transaction still decides. A row holding
        an engine's raw body (a Cloud API webhook) goes to that engine's raw handler. A
        transient failure leaves the event pending and queued for the in-process retry.
        """
        try:
            loaded = known if known is not None else await self._load(row_id)
        except Exception as exc:
            if not is_transient(exc):
                raise
            self._sweep_needed = True  # recover() finds it again
            self._kick()
            return
        if loaded is None:
            return
        if not isinstance(loaded, tuple):
            await loaded(row_id)  # a raw body: its engine turns it into events
            return
        company_id, event = loaded
        key = _sender_key(event)
        lock = self._lock(key)
        async with lock:
            if self._deferred.get(key):
                self._defer(key, row_id)  # an older event of this sender waits: keep the order
                return
            if not await self._group(self._processing, company_id, (row_id, event)):
                self._defer(key, row_id)

    def _defer(self, key: str, row_id: uuid.UUID) -> None:
        """Queue a stored event for the in-process retry, behind its sender's (caller: locked)."""
        self._deferred.setdefault(key, []).append(row_id)
        self.deferred_total += 1
        self._kick()

    async def process_events(
        self, row_id: uuid.UUID, company_id: uuid.UUID, batch: list[AnyEngineEvent]
    ) -> None:
        """Apply the events of one stored row in one transaction that marks it PROCESSED.

        A row holds one engine event, or an engine's raw body that gave several (a Cloud
        API webhook); either way they are applied exactly once, under their senders'
        locks (taken in a fixed order), retried when a uniqueness race is lost. A
        transient failure leaves the row pending for the sweep of the in-process retry.
        """
        locks = [self._lock(key) for key in sorted({_sender_key(e) for e in batch})]
        try:
            async with contextlib.AsyncExitStack() as held:
                for lock in locks:
                    await held.enter_async_context(lock)
                done = await self._process_locked(row_id, company_id, batch)
        except _Split:
            done = await self._split(row_id, batch)
        if not done:
            self._sweep_needed = True
            self._kick()

    async def _process_batch(self, company_id: uuid.UUID, batch: list[_Waiting]) -> None:
        """Process a batch of stored events (one per sender) and settle each with a bool.

        One transaction for all; an event whose uniqueness race was lost, or every event
        of a batch that failed as a whole for a non-transient reason, is then processed
        on its own (`_process_locked`: its race retries and its poison rule). A transient
        failure settles every event False (each is deferred by its caller).
        """
        items: list[tuple[uuid.UUID, AnyEngineEvent]] = [item for item, _ in batch]
        try:
            try:
                again = await self._batch_tx(company_id, items, careful=False)
            except Exception as exc:
                if is_transient(exc):
                    raise
                # Some event failed: redo the batch with one savepoint per event.
                self.reruns += 1
                again = await self._batch_tx(company_id, items, careful=True)
        except Exception as exc:
            if is_transient(exc):
                for _, fut in batch:
                    _settle(fut, False)
                return
            log.exception("inbound batch of %d failed: its events go one by one", len(batch))
            again = {row_id for row_id, _ in items}
        await self._settle_batch(company_id, batch, again)

    async def _settle_batch(
        self,
        company_id: uuid.UUID,
        batch: list[_Waiting],
        again: set[uuid.UUID],
    ) -> None:
        """Settle a batch's callers (items: row id and event) True; those in `again` alone first."""
        self.alone += len(again)
        for (row_id, event), fut in batch:
            if row_id not in again:
                _settle(fut, True)
                continue
            try:
                _settle(fut, await self._process_locked(row_id, company_id, [event]))
            except Exception as exc:
                _settle(fut, error=exc)

    async def _store_and_process(self, company_id: uuid.UUID, batch: list[_Waiting]) -> None:
        """Commit raw events with their processing, in one transaction; settle each with a bool.

        One transaction per batch instead of two (a group commit, then the batch): one
        commit, and on PostgreSQL one statement fewer (the raw rows' insert holds the
        company, as the pending rows' query would). Each caller holds its sender's
        lock, so a batch holds one event per sender. If that transaction fails, for
        whatever reason, nothing of it was committed: the raw events are then
        committed on their own (`_store_rows`, whose failure is the caller's error: not
        acknowledged) and the stored ones processed as any batch (`_process_batch`, its
        careful rerun and poison rule): an event that cannot be processed never keeps a
        raw event from being stored.
        """
        rows: list[dict[str, Any]] = [row for (row, _), _ in batch]
        items: list[tuple[uuid.UUID, AnyEngineEvent]] = [(row["id"], ev) for (row, ev), _ in batch]
        try:
            again = await self._batch_tx(company_id, items, careful=False, raw=rows)
        except Exception:
            log.debug("inbound: a stored-and-processed batch failed; storing it first")
            self.reruns += 1
            await self._store_then_process(company_id, batch)
            return
        await self._settle_batch(
            company_id, [(item, fut) for item, (_, fut) in zip(items, batch, strict=True)], again
        )

    async def _store_then_process(self, company_id: uuid.UUID, batch: list[_Waiting]) -> None:
        """A group commit, then the batch of what it stored: for a failed combined batch."""
        loop = asyncio.get_running_loop()
        stores: list[_Waiting] = [(row, loop.create_future()) for (row, _), _ in batch]
        await self._store_rows(company_id, stores)
        stored: list[_Waiting] = []
        for ((row, event), fut), (_, done) in zip(batch, stores, strict=True):
            error = done.exception() if not done.cancelled() else asyncio.CancelledError()
            if error is not None:
                _settle(fut, error=error)  # not stored: the caller must not acknowledge
            else:
                stored.append(((row["id"], event), fut))
        if stored:
            await self._process_batch(company_id, stored)

    async def _batch_tx(
        self,
        company_id: uuid.UUID,
        items: list[tuple[uuid.UUID, AnyEngineEvent]],
        *,
        careful: bool,
        raw: list[dict[str, Any]] | None = None,
    ) -> set[uuid.UUID]:
        """Apply a batch in one transaction; return the row ids to process again alone.

        Not `careful`, the events run straight on (no savepoint, one flush for many)
        and any failure rolls the whole transaction back for the caller to redo it
        `careful`: then each event runs in its own savepoint, a deterministic failure
        rolls back just that event, which is marked FAILED (poison) in the same
        transaction, and a lost uniqueness race rolls it back to be retried alone.
        Rows no longer pending (processed meanwhile) are skipped; event seqs are
        taken once, at the end.
        """
        again: set[uuid.UUID] = set()
        processed: list[uuid.UUID] = []
        poisoned: list[tuple[uuid.UUID, str]] = []
        last_seq: int | None = None  # SQLite's straight run: the event counter read
        async with self.kernel.tx() as db:
            # PostgreSQL: hold the company first (see `_lock_company`), with the
            # raw rows' insert (`insert_under`) or the pending rows' query
            # (`_PENDING_UNDER_COMPANY`). SQLite has one writer: a company deleted
            # before this began took its stored rows with it (ON DELETE CASCADE), so the
            # query below finds none pending.
            sqlite = self.kernel.engine.dialect.name == "sqlite"
            ids = [row_id for row_id, _ in items]
            # Stored here and run straight: the batch commits every event processed, or
            # nothing at all, so its raw rows go in PROCESSED already (no UPDATE after).
            born_processed = bool(raw) and not careful
            if raw and born_processed:
                stamp = utcnow()
                raw = [
                    {
                        **row,
                        "state": WebhookEventState.PROCESSED,
                        "processed_at": stamp,
                        "attempts": row["attempts"] + 1,
                    }
                    for row in raw
                ]
            if raw:  # stored in this transaction (`_store_and_process`)
                if sqlite:
                    await insert_rows(db, cast(Table, WebhookEvent.__table__), raw)
                elif not await insert_under(  # the company held first, in the same statement
                    await db.connection(),
                    cast(Table, WebhookEvent.__table__),
                    raw,
                    cast(Table, Company.__table__),
                    company_id,
                ):
                    raise NotFound("session not found")  # `_store_rows` tells the callers
                # Inserted by this very transaction: no one else can have them.
                pending = {row["id"] for row in raw}
            elif sqlite:
                pending = {r[0] for r in await _PENDING.rows(db, {"ids": ids})}
            else:  # the company held first, in the same statement
                pending = {
                    r[0]
                    for r in await _PENDING_UNDER_COMPANY.rows(
                        db, {"ids": ids, "company_id": company_id}
                    )
                }
                if not pending:
                    return again  # done meanwhile, or deleted with its company
            messages = {
                (ev.session_id, ev.wa_message_id)
                for row_id, ev in items
                if row_id in pending and isinstance(ev, MessageEvent)
            }
            if messages:
                db.info[_VIEW], existing = await _View.read(
                    db,
                    company_id,
                    [
                        ev
                        for row_id, ev in items
                        if row_id in pending and isinstance(ev, MessageEvent)
                    ],
                    messages,
                )
                db.info[_FRESH] = messages - existing
            events.defer_seqs(db)
            held: Held | None = None
            if not careful:
                db.info[_MESSAGES] = {}
                held = db.info[_HELD] = Held()
                view = db.info.get(_VIEW)
                if view is not None:
                    view.known.held = held
                    ahead = db.info[_NUMBERS] = _Numbers(wanted=view.newcomers())
                    if sqlite and view.company is not None:
                        # One writer from BEGIN IMMEDIATE to the commit: the counters
                        # the view read stay true; both move once, behind (`_Numbers`).
                        ahead.read = view.company.last_ticket_number
                        last_seq = view.company.last_event_seq
            for row_id, event in items:
                if row_id not in pending:
                    continue
                if not careful:
                    await self._apply(db, company_id, event)
                    processed.append(row_id)
                    continue
                at = events.mark(db)
                try:
                    async with db.begin_nested():
                        await self._apply(db, company_id, event)
                except IntegrityError:
                    events.rewind(db, at)
                    db.info.pop(_VIEW, None)
                    again.add(row_id)
                except Exception as exc:
                    if is_transient(exc):
                        raise
                    events.rewind(db, at)
                    db.info.pop(_VIEW, None)
                    log.exception("inbound event %s failed", row_id)
                    poisoned.append((row_id, f"{type(exc).__name__}: {exc}"))
                else:
                    processed.append(row_id)
            db.info.pop(_MESSAGES, None)
            numbers: _Numbers | None = db.info.pop(_NUMBERS, None)
            marked = born_processed
            if db.info.pop(_HELD, None) is not None and held is not None:
                if not sqlite:
                    # PostgreSQL: the batch's event rows, the numbers given back and the
                    # PROCESSED mark go with the held rows, in one statement (the
                    # event counter's UPDATE just before it: `zapd.kernel.held`).
                    await events.assign_seqs(db, company_id, held=held)
                    if numbers is not None:
                        await numbers.give_back(db, company_id, held)
                    if processed and not marked:
                        held.also(_PROCESSED_ALL, {"ids": processed, "now": utcnow()})
                        marked = True
                    await write_changes(db, (Chat, Ticket), held)  # the loaded ones' UPDATEs
                await held.insert(db)
                if sqlite:  # PostgreSQL: done above (with `held`), or left to the flush
                    # The batch's counters and timestamps on chats and tickets it loaded.
                    await write_changes(db, (Chat, Ticket))
            if numbers is not None:
                await numbers.give_back(db, company_id)
            now = utcnow()
            if processed and not marked:
                await db.flush()  # nothing the ORM writes may go behind (it reads rowcounts)
                # SQLite: rides with the next trip.
                await _PROCESSED.run(db, {"ids": processed, "now": now}, behind=True)
            for row_id, error in poisoned:
                await db.execute(_mark_failed(row_id, error, now))
            await events.assign_seqs(db, company_id, last=last_seq)
        self.processed += len(processed)
        self.failed += len(poisoned)
        return again

    def _lock(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        return lock

    async def _load(
        self, row_id: uuid.UUID
    ) -> tuple[uuid.UUID, AnyEngineEvent] | RawHandler | None:
        """Read a pending stored row: its event, its raw handler, or None (gone, done, poison)."""
        async with self.kernel.read() as db:
            row = await db.get(WebhookEvent, row_id)
            if row is None or row.state != WebhookEventState.PENDING:
                return None
            payload, company_id = row.payload, row.company_id
            raw_handler = self.raw_handlers.get(row.event_type)
        if raw_handler is not None:
            return raw_handler
        try:
            return company_id, load_event(payload)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            # A stored event this version cannot read is poison: mark it and go on,
            # never keep the daemon from starting over it.
            await self._poison(row_id, f"unreadable stored event: {exc}"[:2000])
            return None

    async def _process_locked(
        self, row_id: uuid.UUID, company_id: uuid.UUID, batch: list[AnyEngineEvent]
    ) -> bool:
        """Process under the senders' locks; False when a transient failure put it off.

        When a batch of several fails deterministically this raises `_Split`: the
        caller lets go of the locks and hands each event to `receive` on its own
        (`_split`), so one bad event cannot hold back the others; a single one is
        poisoned.
        """
        try:
            for attempt in range(MAX_RACE_RETRIES):
                try:
                    async with self.kernel.tx() as db:
                        if not await _lock_company(db, company_id):
                            return True  # deleted with its company
                        fresh = await db.get(WebhookEvent, row_id, with_for_update=True)
                        if fresh is None or fresh.state != WebhookEventState.PENDING:
                            return True
                        for event in batch:
                            await self._apply(db, company_id, event)
                        fresh.state = WebhookEventState.PROCESSED
                        fresh.processed_at = utcnow()
                        fresh.attempts += 1
                    self.processed += len(batch)
                    return True
                except IntegrityError:
                    # Lost a race (same message delivered twice, first ticket of a client
                    # opened by a concurrent event): the next try sees the winner's rows.
                    if attempt == MAX_RACE_RETRIES - 1:
                        await self._poison(row_id, "uniqueness conflict persisted")
                        return True
                    await asyncio.sleep(0.01 * (attempt + 1))
                except Exception as exc:
                    if is_transient(exc):
                        return False
                    log.exception("inbound event %s failed", row_id)
                    if len(batch) == 1:
                        await self._poison(row_id, f"{type(exc).__name__}: {exc}")
                        return True
                    break
            # A batch that failed as a whole: one stored row per event, each on its own,
            # once the caller has let go of the senders' locks (`_split`).
            raise _Split
        except Exception as exc:  # the poison mark failed
            if is_transient(exc):
                return False
            raise

    async def _split(self, row_id: uuid.UUID, batch: list[AnyEngineEvent]) -> bool:
        """Receive each event of a failed row on its own, then mark the row PROCESSED.

        Runs without the senders' locks (`receive` takes each one's). A crash before
        the mark leaves the row pending: its events are received again, deduplicated.
        False when a transient failure put it off.
        """
        try:
            for event in batch:
                await self.receive(event.session_id, event)
            async with self.kernel.tx() as db:
                await db.execute(
                    update(WebhookEvent)
                    .where(
                        WebhookEvent.id == row_id,
                        WebhookEvent.state == WebhookEventState.PENDING,
                    )
                    .values(
                        state=WebhookEventState.PROCESSED,
                        error="split into one stored event per message",
                        attempts=WebhookEvent.attempts + 1,
                        processed_at=utcnow(),
                    )
                    .execution_options(synchronize_session=False)
                )
            return True
        except Exception as exc:
            if is_transient(exc):
                return False
            raise

    # ------------------------------------------------------------------ retry

    def _park(self, session_id: uuid.UUID, event: AnyEngineEvent) -> None:
        if len(self._parked) >= MAX_PARKED:
            self._parked.popleft()
            log.warning("too many engine events waiting for the database: oldest dropped")
        self._parked.append((session_id, event))

    def _kick(self) -> None:
        """Make sure the in-process retry runs (one task at a time)."""
        if self._retry_task is None or self._retry_task.done():
            self._retry_task = asyncio.get_running_loop().create_task(self._retry_loop())

    @property
    def backlog(self) -> int:
        """How many events wait for the in-process retry (stored or parked)."""
        return sum(len(q) for q in self._deferred.values()) + len(self._parked)

    async def _retry_loop(self) -> None:
        delay = RETRY_FIRST_DELAY
        while self._deferred or self._sweep_needed or self._parked:
            await asyncio.sleep(delay)
            try:
                ok = await self._retry_once()
            except Exception:  # a bug must not end the retry of what is still pending
                log.exception("inbound retry failed")
                ok = False
            delay = RETRY_FIRST_DELAY if ok else min(delay * 2, RETRY_MAX_DELAY)

    async def _retry_once(self) -> bool:
        """Store parked events, process deferred ones oldest first per sender, then sweep.

        Returns False while the database still fails.
        """
        while self._parked:
            session_id, event = self._parked[0]
            try:
                await self.store(session_id, event)
            except Exception as exc:
                if is_transient(exc):
                    return False
                log.exception("parked engine event dropped")
            self._parked.popleft()
            self._sweep_needed = True  # the sweep processes what was just stored
        for key in list(self._deferred):
            async with self._lock(key):
                queue = self._deferred.get(key, [])
                while queue:
                    row_id = queue[0]
                    try:
                        loaded = await self._load(row_id)
                    except Exception as exc:
                        if is_transient(exc):
                            return False
                        raise
                    if isinstance(loaded, tuple):
                        company_id, event = loaded
                        if not await self._process_locked(row_id, company_id, [event]):
                            return False
                    elif loaded is not None:
                        await loaded(row_id)  # a raw body (not expected in this queue)
                    queue.pop(0)
                self._deferred.pop(key, None)
        if self._sweep_needed:
            self._sweep_needed = False
            try:
                await self.recover()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self._sweep_needed = True
                return False
        return not self._deferred and not self._sweep_needed and not self._parked

    async def stop(self) -> None:
        """Stop the in-process retry (what it left pending is processed at the next start)."""
        task, self._retry_task = self._retry_task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _poison(self, row_id: uuid.UUID, error: str) -> None:
        self.failed += 1
        async with self.kernel.tx() as db:
            await db.execute(_mark_failed(row_id, error, utcnow()))

    async def _apply(self, db: AsyncSession, company_id: uuid.UUID, ev: AnyEngineEvent) -> None:
        if isinstance(ev, MessageEvent):
            await self._message(db, company_id, ev)
            return
        await _unhold(db)  # acks and contacts look rows up by query
        if isinstance(ev, AckEvent):
            await acks.on_ack(
                db,
                company_id,
                ev.session_id,
                ev.wa_message_id,
                ev.status,
                ev.at,
                "engine",
                ev.error,
            )
        elif isinstance(ev, ContactEvent):
            await self._contact(db, company_id, ev)

    # ------------------------------------------------------------------ clients

    async def _client(
        self, db: AsyncSession, company_id: uuid.UUID, sender: Identity, push_name: str | None
    ) -> Client:
        view: _View | None = db.info.get(_VIEW)
        if view is None:
            await _unhold(db)
            client, _ = await identity.find_or_create(
                db, company_id, sender, profile_name=push_name
            )
            return client
        client, created = await view.known.find_or_create(db, sender, profile_name=push_name)
        if created:
            view.open_clients.add(client.id)  # a new client has no ticket yet
            view.created.add(client.id)
        return client

    async def _contact(self, db: AsyncSession, company_id: uuid.UUID, ev: ContactEvent) -> None:
        db.info.pop(_VIEW, None)  # it writes identities the batch's snapshot would not know
        sender = sender_of(ev)
        client = await identity.find(db, company_id, sender)
        if client is None:
            return  # contacts that never wrote are not clients
        if ev.name and ev.name != client.profile_name:
            client.profile_name = ev.name
        if sender.lid and not client.lid:
            client.lid = sender.lid
        await identity.attach(db, client, sender)

    # ------------------------------------------------------------------ messages

    async def _message(self, db: AsyncSession, company_id: uuid.UUID, ev: MessageEvent) -> None:
        session_id = ev.session_id
        fresh: set[tuple[uuid.UUID, str]] = db.info.get(_FRESH, set())
        if (session_id, ev.wa_message_id) in fresh:
            # Absent when the batch began, and this is its only delivery in the batch.
            fresh.discard((session_id, ev.wa_message_id))
            duplicate = None
        elif (session_id, ev.wa_message_id) in db.info.get(_MESSAGES, {}):
            duplicate = True  # delivered twice in this batch: the first is not inserted yet
        else:
            duplicate = await db.scalar(
                select(Message.id).where(
                    Message.company_id == company_id,
                    Message.session_id == session_id,
                    Message.wa_message_id == ev.wa_message_id,
                )
            )
        if duplicate is not None:
            return  # a redelivery changes nothing
        chat_jid = parse_jid(ev.chat_jid)
        chat_type = (
            ChatType.GROUP
            if chat_jid.is_group
            else ChatType.BROADCAST
            if chat_jid.is_broadcast
            else ChatType.NEWSLETTER
            if chat_jid.is_newsletter
            else ChatType.DIRECT
        )
        client: Client | None = None
        if chat_type == ChatType.DIRECT:
            client = await self._client(db, company_id, sender_of(ev), ev.push_name)
        view: _View | None = db.info.get(_VIEW)
        held: Held | None = db.info.get(_HELD)
        if view is not None and (session_id, ev.chat_jid) in view.chat_keys:
            chat = view.chats.get((session_id, ev.chat_jid))
        else:
            await _unhold(db)
            chat = await db.scalar(
                select(Chat).where(
                    Chat.company_id == company_id,
                    Chat.session_id == session_id,
                    Chat.wa_chat_id == ev.chat_jid,
                )
            )
        if chat is None:
            chat = Chat(
                id=new_id(),
                company_id=company_id,
                session_id=session_id,
                client_id=client.id if client else None,
                wa_chat_id=ev.chat_jid,
                type=chat_type,
                name=ev.push_name,
            )
            if held is not None:
                held.add(chat)
            else:
                db.add(chat)
                await db.flush()
            if view is not None:
                view.chats[(session_id, ev.chat_jid)] = chat
        quoted_id = None
        rows: dict[tuple[uuid.UUID, str], dict[str, Any]] | None = db.info.get(_MESSAGES)
        if ev.quoted_wa_message_id and rows and (session_id, ev.quoted_wa_message_id) in rows:
            quoted_id = rows[(session_id, ev.quoted_wa_message_id)]["id"]
        elif ev.quoted_wa_message_id:
            quoted_id = await db.scalar(
                select(Message.id).where(
                    Message.company_id == company_id,
                    Message.session_id == session_id,
                    Message.wa_message_id == ev.quoted_wa_message_id,
                )
            )
        ticket: Ticket | None = None
        created = reopened = False
        if client is not None and not client.blocked and not ev.from_me:
            ticket, created, reopened = await self._ticket_for(db, company_id, session_id, client)
            ticket.chat_id = chat.id
        elif client is not None and ev.from_me:
            await _unhold(db)  # the message below is flushed at once
            ticket = await self._open_ticket(db, client.id, session_id)
        now = utcnow()
        row: dict[str, Any] = {
            "id": new_id(),  # known now: no flush needed before the events name it
            "company_id": company_id,
            "session_id": session_id,
            "chat_id": chat.id,
            "ticket_id": ticket.id if ticket else None,
            "direction": MessageDirection.OUTBOUND if ev.from_me else MessageDirection.INBOUND,
            "type": ev.type,
            "status": MessageStatus.SENT if ev.from_me else MessageStatus.RECEIVED,
            "body": ev.body,
            "wa_message_id": ev.wa_message_id,
            "quoted_message_id": quoted_id,
            "media_id": ev.media_id or (await self._media(db, company_id, ev)),
            "wa_timestamp": ev.timestamp,
            "extra": {"kind": "phone"} if ev.from_me else dict(ev.extra),
            # Stamped now, not when the batch inserts it: the replies it gets come after.
            "created_at": now,
            "updated_at": now,
        }
        chat.last_message_at = now
        if ev.from_me:
            # Rare (sent from the phone): an ORM row, since its early acks apply to it.
            message = Message(**row)
            db.add(message)
            await db.flush()
            await acks.apply_pending(db, message, "engine")
        elif rows is not None and held is not None:
            rows[(session_id, ev.wa_message_id)] = row
            held.add_row(Message, row)  # one executemany at the batch's end
        else:
            await db.execute(insert(Message), [row])
        if not ev.from_me:
            chat.unread_count += 1
        if ticket is not None:
            ticket.last_message_at = now
            if not ev.from_me:
                ticket.unread_count += 1
                ticket.last_inbound_at = now
        await events.for_ticket(
            db,
            company_id,
            MESSAGE_NEW,
            {
                "id": row["id"],
                "ticket_id": row["ticket_id"],
                "chat_id": chat.id,
                "client_id": client.id if client else None,
                "direction": int(row["direction"]),
                "type": int(row["type"]),
                "status": int(row["status"]),
                "body": row["body"],
                "is_note": False,
            },
            ticket,
        )
        if ticket is None or ev.from_me:
            return
        step = await self._run_flow(db, company_id, ticket, client, chat, ev, created)  # type: ignore[arg-type]
        await events.for_ticket(
            db,
            company_id,
            TICKET_NEW if created else TICKET_UPDATE,
            ticket_event(ticket, reopened=reopened, step=step),
            ticket,
        )

    # ------------------------------------------------------------------ tickets

    async def _media(
        self, db: AsyncSession, company_id: uuid.UUID, ev: MessageEvent
    ) -> uuid.UUID | None:
        if not ev.media_url:
            return None
        await _unhold(db)
        return await store_received(db, self.kernel.settings, company_id, ev)

    async def _open_ticket(
        self, db: AsyncSession, client_id: uuid.UUID, session_id: uuid.UUID
    ) -> Ticket | None:
        view: _View | None = db.info.get(_VIEW)
        if view is not None and client_id in view.open_clients and session_id in view.sessions:
            return view.open.get((client_id, session_id))
        await _unhold(db)
        return await db.scalar(
            select(Ticket).where(
                Ticket.client_id == client_id,
                Ticket.session_id == session_id,
                Ticket.status != TicketStatus.CLOSED,
            )
        )

    async def _ticket_for(
        self, db: AsyncSession, company_id: uuid.UUID, session_id: uuid.UUID, client: Client
    ) -> tuple[Ticket, bool, bool]:
        """Return (ticket, created, reopened) for a client's new message."""
        ticket = await self._open_ticket(db, client.id, session_id)
        if ticket is not None:
            return ticket, False, False
        view: _View | None = db.info.get(_VIEW)
        company = view.company if view is not None else None
        if company is None:
            company = await db.get(Company, company_id)
            assert company is not None
            if view is not None:
                view.company = company
        window = settings_of(company).reopen_window_minutes
        last: Ticket | None = None
        if window > 0 and (view is None or client.id not in view.created):
            await _unhold(db)  # a reopen queries and flushes
            last = await db.scalar(
                select(Ticket)
                .where(
                    Ticket.client_id == client.id,
                    Ticket.session_id == session_id,
                    Ticket.status == TicketStatus.CLOSED,
                )
                .order_by(Ticket.closed_at.desc())
                .limit(1)
            )
        now = utcnow()
        if (
            window > 0
            and last is not None
            and last.closed_at is not None
            and now - last.closed_at <= timedelta(minutes=window)
        ):
            # Back to its last agent if still active with room, else to its queue.
            await lifecycle.restore(db, last, now)
            await db.flush()  # the partial unique index speaks here if a race was lost
            _opened(db, client.id, session_id, last)
            return last, False, True
        numbers: _Numbers | None = db.info.get(_NUMBERS)
        if numbers is not None:
            number = await numbers.take(db, company_id)
        else:
            with db.no_autoflush:  # the counter depends on nothing the session holds
                number = await next_ticket_number(db, company_id)
        ticket = Ticket(
            id=new_id(),
            company_id=company_id,
            number=number,
            client_id=client.id,
            session_id=session_id,
            status=TicketStatus.PENDING,
            flow_state=FlowState.NEW,
        )
        held: Held | None = db.info.get(_HELD)
        if held is not None:
            held.add(ticket)  # the one-open-ticket index speaks at the batch's insert
        else:
            db.add(ticket)
            await db.flush()
        _opened(db, client.id, session_id, ticket)
        return ticket, True, False

    # ------------------------------------------------------------------ flow

    async def _run_flow(
        self,
        db: AsyncSession,
        company_id: uuid.UUID,
        ticket: Ticket,
        client: Client,
        chat: Chat,
        ev: MessageEvent,
        created: bool,
    ) -> Step | None:
        if not created and ticket.flow_state not in _AWAITING:
            return None
        flow, timeouts, native = await self._flow_cached(db, company_id, ticket.session_id)
        now = utcnow()
        if created:
            step = flow.start(await self._customer(db, client, ticket), now)
        else:
            # A tapped button or list row answers with its id (the menu position, "1"/"2").
            step = flow.handle(
                ticket.flow_state, ticket.flow_data, ev.reply_id or ev.body or "", now
            )
        ticket.flow_state = step.state
        ticket.flow_data = step.data
        if step.department_id is not None:
            ticket.department_id = step.department_id
            timeout = timeouts.get(step.department_id)
            if timeout:
                ticket.timeout_at = now + timedelta(seconds=timeout)
        held: Held | None = db.info.get(_HELD)
        for text, interactive in menu_messages(flow, step, native=native):
            extra = None if interactive is None else {"interactive": interactive}
            if held is not None:  # plain rows, inserted with the batch's
                await outbox.enqueue_held(
                    db, chat, text, held=held, ticket=ticket, kind="menu", extra=extra
                )
            else:
                await outbox.enqueue(db, chat, text, ticket=ticket, kind="menu", extra=extra)
        return step

    async def _customer(self, db: AsyncSession, client: Client, ticket: Ticket) -> Customer:
        view: _View | None = db.info.get(_VIEW)
        if view is not None and client.id in view.created:
            # Created in this batch: no closed ticket of theirs exists.
            return Customer(name=client.name or client.profile_name)
        last = (
            await db.execute(
                select(Ticket.department_id, Ticket.closed_at)
                .where(
                    Ticket.client_id == client.id,
                    Ticket.id != ticket.id,
                    Ticket.status == TicketStatus.CLOSED,
                    Ticket.department_id.is_not(None),
                )
                .order_by(Ticket.closed_at.desc())
                .limit(1)
            )
        ).first()
        return Customer(
            name=client.name or client.profile_name,
            last_department_id=last[0] if last else None,
            last_served_at=last[1] if last else None,
        )

    async def _flow_cached(
        self, db: AsyncSession, company_id: uuid.UUID, session_id: uuid.UUID | None
    ) -> tuple[Flow, dict[uuid.UUID, int | None], bool]:
        """The flow, department timeouts and native-menu flag, read once per transaction.

        Plain values only (no ORM rows): they outlive a rolled-back savepoint of a batch.
        """
        cache: dict[Any, Any] = db.info.setdefault(_FLOW_CACHE, {})
        key = (company_id, session_id)
        found = cache.get(key)
        if found is None:
            session = await db.get(WaSession, session_id) if session_id else None
            flow, departments = await self._flow(db, company_id, session)
            native = session is not None and session.engine == Engine.CLOUD
            timeouts = {d.id: d.response_timeout_seconds for d in departments.values()}
            found = cache[key] = (flow, timeouts, native)
        return found

    async def _flow(
        self, db: AsyncSession, company_id: uuid.UUID, session: WaSession | None
    ) -> tuple[Flow, dict[uuid.UUID, Department]]:
        view: _View | None = db.info.get(_VIEW)
        company = view.company if view is not None else None
        if company is None:
            company = await db.get(Company, company_id)
        assert company is not None
        settings = settings_of(company)
        if view is not None and view.departments is not None:
            rows = list(view.departments)  # read with the view, in this transaction
        else:
            rows = list(
                (
                    await db.scalars(
                        select(Department).where(
                            Department.company_id == company_id, Department.active.is_(True)
                        )
                    )
                ).all()
            )
        flow_cfg: dict[str, Any] = dict(session.flow_config) if session else {}
        only = {str(x) for x in flow_cfg.get("department_ids", [])}
        if only:
            rows = [d for d in rows if str(d.id) in only]
        infos = [
            DepartmentInfo(
                id=d.id,
                name=d.name,
                slug=d.slug,
                menu_order=d.menu_order,
                keywords=tuple(d.keywords or ()),
                greeting=d.greeting,
                out_of_hours_message=d.out_of_hours_message,
                business_hours={
                    k: [tuple(r) for r in v] for k, v in (d.business_hours or {}).items()
                },
                timezone=d.timezone or company.timezone,
            )
            for d in rows
        ]
        config = FlowConfig(
            company_name=str(flow_cfg.get("company_name") or company.name),
            departments=infos,
            default_department_id=session.default_department_id if session else None,
            max_attempts=settings.menu_max_attempts,
            returning_client_days=settings.returning_client_days,
            locale=company.locale,
            text_overrides=session_overrides(flow_cfg),
        )
        return Flow(config), {d.id: d for d in rows}
