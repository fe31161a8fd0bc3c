"""In-process fan-out of committed events to WebSocket subscribers.

Each subscriber owns a bounded mailbox. `dispatch` never blocks and never grows memory
without bound: a subscriber whose mailbox is full is marked for closing (the socket
closes with CloseCode.SLOW_CONSUMER and the client resumes with `since=`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.errors import CloseCode
from zapd.kernel.context import CommittedEvent
from zapd.kernel.principal import Principal

log = logging.getLogger("zapd.realtime")


@dataclass(frozen=True)
class HubItem:
    """What a subscriber's mailbox carries: a persisted event or an ephemeral envelope."""

    company_id: uuid.UUID
    seq: int | None
    type: str
    data: dict[str, Any]
    department_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    scoped: bool = False  # about a ticket: the ticket rule applies (zapd.kernel.visibility)

    @classmethod
    def from_event(cls, ev: CommittedEvent) -> HubItem:
        """Build from a committed event row."""
        return cls(
            ev.company_id, ev.seq, ev.type, ev.data, ev.department_id, ev.user_id, bool(ev.scoped)
        )

    def envelope(self) -> dict[str, Any]:
        """Return the wire envelope."""
        return {
            "seq": self.seq,
            "type": self.type,
            "company_id": str(self.company_id),
            "data": self.data,
        }

    @cached_property
    def text(self) -> str:
        """Return the envelope as JSON, encoded once however many sockets it goes to."""
        return json.dumps(self.envelope(), separators=(",", ":"), ensure_ascii=False)


@dataclass(eq=False)
class Subscriber:
    """One live WebSocket connection's mailbox (bounded; overflow closes the connection)."""

    principal: Principal
    maxsize: int = 1000
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int = CloseCode.NORMAL
    close_reason: str = ""
    _items: deque[HubItem] = field(default_factory=deque)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, item: HubItem) -> bool:
        """Queue `item` without blocking; a full mailbox closes the subscriber instead."""
        if self.closing.is_set():
            return False
        if len(self._items) >= self.maxsize:
            self.close(CloseCode.SLOW_CONSUMER, "too slow: reconnect with since=<last seq>")
            return False
        self._items.append(item)
        self._ready.set()
        return True

    def close(self, code: int, reason: str) -> None:
        """Ask the connection to close with `code` (first reason wins); drop what is queued."""
        if not self.closing.is_set():
            self.close_code, self.close_reason = code, reason
            self.closing.set()
            self._items.clear()
            self._ready.set()

    @property
    def pending(self) -> int:
        """Return how many items wait in the mailbox."""
        return len(self._items)

    async def wait(self) -> None:
        """Wait until there is something to take or the subscriber is closing."""
        await self._ready.wait()

    def take(self) -> list[HubItem]:
        """Return and remove everything queued, oldest first."""
        items = list(self._items)
        self._items.clear()
        if not self.closing.is_set():
            self._ready.clear()
        return items


class Hub:
    """Registry of subscribers per company; the only path from commits to sockets."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], queue_size: int = 1000):
        self.sessions = sessions
        self.queue_size = queue_size
        self._by_company: dict[uuid.UUID | None, set[Subscriber]] = {}
        self.dispatched = 0  # events handed to subscribers (for /metrics)
        self.slow_consumers = 0  # connections dropped because their mailbox overflowed
        self.gap_fills = 0  # live items that arrived ahead of an earlier seq (read from the log)
        self.accepting = True  # False once close_all ran: new connections are refused

    def subscribe(self, principal: Principal) -> Subscriber:
        """Register a connection; it starts receiving every event dispatched from now on."""
        sub = Subscriber(principal, self.queue_size)
        if not self.accepting:
            sub.close(CloseCode.GOING_AWAY, "server shutting down")
        self._by_company.setdefault(principal.company_id, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        """Forget a connection."""
        subs = self._by_company.get(sub.principal.company_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._by_company[sub.principal.company_id]

    @property
    def client_count(self) -> int:
        """Return the number of live subscribers."""
        return sum(len(s) for s in self._by_company.values())

    def _targets(self, company_id: uuid.UUID) -> list[Subscriber]:
        # Global admins (company None) watch every company.
        return [*self._by_company.get(company_id, ()), *self._by_company.get(None, ())]

    def _offer(self, sub: Subscriber, item: HubItem) -> None:
        if sub.closing.is_set():
            return
        if not sub.offer(item):  # the mailbox was full: this subscriber is now closing
            self.slow_consumers += 1
            log.warning("realtime: dropping a slow consumer (%s)", sub.principal.name)

    def dispatch(self, event: CommittedEvent | HubItem) -> None:
        """Hand a committed event to every subscriber of its company."""
        item = event if isinstance(event, HubItem) else HubItem.from_event(event)
        for sub in self._targets(item.company_id):
            self._offer(sub, item)
        self.dispatched += 1

    def send_ephemeral(
        self, item: HubItem, accept: Callable[[Subscriber], bool] = lambda _s: True
    ) -> int:
        """Send a non-persisted event (typing) to the subscribers `accept` lets through."""
        n = 0
        for sub in self._targets(item.company_id):
            if accept(sub):
                self._offer(sub, item)
                n += 1
        return n

    def close_user(
        self, user_id: uuid.UUID, code: int = CloseCode.UNAUTHORIZED, reason: str = ""
    ) -> int:
        """Close every connection of a user (disabled, password changed, logged out)."""
        return self.close_where(
            lambda p: p.user_id == user_id, code, reason or "credentials no longer valid"
        )

    def close_where(self, pred: Callable[[Principal], bool], code: int, reason: str) -> int:
        """Close every connection whose principal matches `pred`."""
        n = 0
        for subs in list(self._by_company.values()):
            for sub in list(subs):
                if pred(sub.principal):
                    sub.close(code, reason)
                    n += 1
        return n

    async def close_all(self) -> None:
        """Refuse new connections and ask every open one to close (server shutting down)."""
        self.accepting = False
        self.close_where(lambda _p: True, CloseCode.GOING_AWAY, "server shutting down")
