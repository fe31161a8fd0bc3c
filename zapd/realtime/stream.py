"""One connection's event feed: replay from the log after `since`, then live, with no
gap and no duplicate.

The order of operations is what makes it exact:

1. read each company's head (`companies.last_event_seq`, committed with the events):
   that is where a client without `since` starts;
2. subscribe to the hub, so every event dispatched from now on is buffered;
3. read the heads again and replay the visible events in `(start, head]` from the
   `events` table (`start` is `since`, or the first head for live-only clients: an
   event committed between the two reads is replayed rather than lost);
4. drain the buffer. The feed tracks the last `seq` seen per company over the
   *unfiltered* stream: an item at or below it is a duplicate and is dropped; an item
   beyond `last + 1` means an earlier event's after-commit hook has not run yet (two
   transactions may finish in either order), so the missing range is read from the
   table and sent first. Seqs are dense (taken under the company row lock), so the
   range is always there once a later seq has committed.

A database session is opened only for the head reads and for each replay batch.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from zapd.db.models import Company, Event
from zapd.kernel.principal import Principal
from zapd.kernel.visibility import can_see_event, event_clause
from zapd.realtime.hub import Hub, HubItem

REPLAY_BATCH = 500  # rows per replay query
MAX_SINCE_ENTRIES = 10_000
MAX_SEQ = 2**63 - 1

Send = Callable[[str], Awaitable[None]]

_INT = re.compile(r"[0-9]{1,19}")


@dataclass(frozen=True)
class Since:
    """Where a client resumes: after `default` in every company, or per company."""

    default: int | None = None  # None: live only
    per_company: dict[uuid.UUID, int] = field(default_factory=dict)

    def for_company(self, company_id: uuid.UUID) -> int | None:
        """Return the last seq the client has of `company_id` (None: it wants live only)."""
        return self.per_company.get(company_id, self.default)


def _seq(text: str) -> int:
    if not _INT.fullmatch(text) or int(text) > MAX_SEQ:
        raise ValueError("since must be a non-negative integer")
    return int(text)


def parse_since(raw: str | None, principal: Principal) -> Since:
    """Parse `?since=`: a seq, or for global admins `COMPANY_ID:SEQ,COMPANY_ID:SEQ...`.

    In the per-company form, companies not named start live (nothing replayed).
    Raise ValueError on anything else.
    """
    if raw is None:
        return Since()
    raw = raw.strip()
    if ":" not in raw:
        return Since(default=_seq(raw))
    if not principal.is_global_admin:
        raise ValueError("since must be a non-negative integer")
    per: dict[uuid.UUID, int] = {}
    entries = raw.split(",")
    if len(entries) > MAX_SINCE_ENTRIES:
        raise ValueError(f"since names more than {MAX_SINCE_ENTRIES} companies")
    for entry in entries:
        cid, sep, seq = entry.strip().partition(":")
        if not sep:
            raise ValueError("since must be SEQ or COMPANY_ID:SEQ,COMPANY_ID:SEQ...")
        try:
            company = uuid.UUID(cid)
        except ValueError:
            raise ValueError(f"since: {cid[:40]!r} is not a company id") from None
        per[company] = _seq(seq)
    return Since(per_company=per)


class EventFeed:
    """The replay-then-live feed of one connection (open it with `EventFeed.open`)."""

    def __init__(
        self,
        hub: Hub,
        principal: Principal,
        since: Since | None,
        floor: dict[uuid.UUID, int],
    ) -> None:
        self.hub = hub
        self.principal = principal
        self.since = since or Since()
        self.floor = floor  # heads read before subscribing: where "live only" starts
        self.sub = hub.subscribe(principal)  # buffer everything dispatched from now on
        self.last: dict[uuid.UUID, int] = {}  # last seq seen per company, unfiltered
        self.sent = 0
        self.gap_fills = 0
        self._clause = event_clause(principal)

    @classmethod
    async def open(cls, hub: Hub, principal: Principal, since: Since | None = None) -> EventFeed:
        """Read the current heads, then subscribe."""
        floor = await _heads(hub, principal)
        return cls(hub, principal, since, floor)

    def close(self) -> None:
        """Unsubscribe (idempotent)."""
        self.hub.unsubscribe(self.sub)

    async def run(self, send: Send) -> None:
        """Replay what the client missed, then stream live until the subscriber closes."""
        await self.start(send)
        while not self.sub.closing.is_set():
            await self.sub.wait()
            if self.sub.closing.is_set():
                return
            await self.deliver(self.sub.take(), send)

    async def start(self, send: Send) -> None:
        """Read every company's head and replay the visible events after the start point."""
        for cid, head in (await _heads(self.hub, self.principal)).items():
            # A company created after the first read has all of its events ahead.
            floor = self.floor.get(cid, 0)
            want = self.since.for_company(cid)
            # A client cannot hold a seq beyond the head it connected at: a bigger
            # `since` (a restored database?) is treated as "live only".
            start = min(floor if want is None else min(want, floor), head)
            if start < head:
                await self._replay(cid, start, head, send)
            self.last[cid] = max(self.last.get(cid, 0), head)
        # Tell the client where the stream stands, per company, so that it can resume
        # exactly even if it drops before any event reaches it.
        hello = {"type": "hello", "seqs": {str(cid): seq for cid, seq in self.last.items()}}
        await send(json.dumps(hello))

    async def deliver(self, batch: list[HubItem], send: Send) -> None:
        """Send a drained batch: ephemeral items as they are, persisted ones in seq order."""
        persisted: list[HubItem] = []
        for item in batch:
            if item.seq is None:
                if self.principal.owns(item.company_id):  # the hub's `accept` chose the rest
                    await self._send(item, send)
            else:
                persisted.append(item)
        persisted.sort(key=lambda i: i.seq or 0)
        for item in persisted:
            if self.sub.closing.is_set():
                return
            await self._live(item, send)

    async def _live(self, item: HubItem, send: Send) -> None:
        cid, seq = item.company_id, item.seq
        assert seq is not None
        if not self.principal.owns(cid):
            return
        last = self.last.get(cid, 0)  # a company created after we connected starts at 0
        if seq <= last:
            return  # already replayed or sent
        if seq > last + 1:
            self.gap_fills += 1
            self.hub.gap_fills += 1
            await self._replay(cid, last, seq - 1, send)
        if can_see_event(self.principal, cid, item.department_id, item.user_id):
            await self._send(item, send)
        self.last[cid] = seq

    async def _replay(self, company_id: uuid.UUID, after: int, upto: int, send: Send) -> None:
        """Send the visible events of `company_id` with `after < seq <= upto`, in order."""
        cursor = after
        while cursor < upto and not self.sub.closing.is_set():
            stmt = (
                select(
                    Event.company_id,
                    Event.seq,
                    Event.type,
                    Event.data,
                    Event.department_id,
                    Event.user_id,
                )
                .where(Event.company_id == company_id, Event.seq > cursor, Event.seq <= upto)
                .order_by(Event.seq)
                .limit(REPLAY_BATCH)
            )
            if self._clause is not None:
                stmt = stmt.where(self._clause)
            async with _read(self.hub) as db:
                items = [HubItem(*row) for row in (await db.execute(stmt)).all()]
            for item in items:
                if self.sub.closing.is_set():
                    return
                await self._send(item, send)
            if len(items) < REPLAY_BATCH:
                break
            cursor = int(items[-1].seq or upto)
        self.last[company_id] = max(self.last.get(company_id, 0), upto)

    async def _send(self, item: HubItem, send: Send) -> None:
        await send(item.text)
        self.sent += 1


@asynccontextmanager
async def _read(hub: Hub) -> AsyncIterator[AsyncSession]:
    async with hub.sessions() as db, db.begin():
        yield db


async def _heads(hub: Hub, principal: Principal) -> dict[uuid.UUID, int]:
    """Return the last seq of each company the principal may watch."""
    stmt = select(Company.id, Company.last_event_seq)
    if not principal.is_global_admin:
        stmt = stmt.where(Company.id == principal.company_id)
    async with _read(hub) as db:
        return {cid: int(head) for cid, head in (await db.execute(stmt)).all()}
