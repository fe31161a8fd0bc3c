"""The greeting-menu traffic mix, driven through the inbound pipeline's entry point.

Every cycle of the mix is, in this order:
- a new customer says hello (`oi`): a client, a chat and a ticket are created and the
  greeting menu is queued in the outbox;
- the customer who said hello one cycle earlier answers the menu (`1`): the ticket is
  routed to the first department;
- `ASSIGNED_PER_CYCLE` messages arrive on tickets an agent already holds (customers
  seeded before the measured phase: hello, menu answer, accepted by the agent).

Events go to `Inbound.receive` as an engine's sink hands them over. Each sender's events
are handed over one after another (a sender's next event waits for its previous one, as
an engine delivers a chat in order); different senders run concurrently, at most
`concurrency` events in flight, or paced at `rate` events/s (open loop: an event's
time is when it was due, not when a slot freed up, so queueing shows in latencies).
A run is over when every stored event has been processed (none left PENDING):
whatever the pipeline does after `receive` returns is inside the measured time.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bench.common import BenchError, Seeded

ASSIGNED_PER_CYCLE = 3
DRAIN_STALL_SECONDS = 60.0  # no progress for this long while draining: the run failed
MAX_OPEN_LOOP_IN_FLIGHT = 20_000


@dataclass(frozen=True)
class Inbound:
    """One customer message of the mix."""

    kind: str  # "new" | "menu" | "assigned"
    phone: str  # E.164
    text: str


class Mix:
    """An endless greeting-menu mix (see the module docstring)."""

    def __init__(self, assigned: list[str], phones: Iterator[str]) -> None:
        if not assigned:
            raise ValueError("the mix needs customers with assigned tickets")
        self.assigned = assigned
        self.phones = phones
        self.seq = itertools.count(1)

    def __iter__(self) -> Iterator[Inbound]:
        waiting: str | None = None  # said hello last cycle, answers the menu this one
        turn = itertools.cycle(self.assigned)
        while True:
            phone = next(self.phones)
            yield Inbound("new", phone, "oi")
            if waiting is not None:
                yield Inbound("menu", waiting, "1")
            waiting = phone
            for _ in range(ASSIGNED_PER_CYCLE):
                yield Inbound("assigned", next(turn), f"bench {next(self.seq)}")


def phones(prefix: int) -> Iterator[str]:
    """Yield distinct Brazilian mobile numbers (+55 11 9xxxx-xxxx) from a prefix."""
    for n in itertools.count():
        yield f"+5511{900000000 + prefix * 1_000_000 + n}"


@dataclass
class Sent:
    """What a drive handed to the pipeline."""

    due: dict[str, float] = field(default_factory=dict)  # body token -> when it was due
    kinds: dict[str, int] = field(default_factory=dict)
    events: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0  # first event due -> every stored event processed


# WhatsApp message ids of this process: a random prefix, then a count scrambled by an
# odd multiplier mod 2**64 (distinct, and in no order, as engine ids land in the index):
# the 32 hex digits a UUID gave, without drawing one per event (load generation's cost).
_RUN = uuid.uuid4().hex[:16].upper()
_MESSAGE_SEQ = itertools.count(1)
_SCRAMBLE = 0x9E3779B97F4A7C15
_MASK = (1 << 64) - 1


def _message_id() -> str:
    return f"BENCH{_RUN}{next(_MESSAGE_SEQ) * _SCRAMBLE & _MASK:016X}"


def _event(session_id: uuid.UUID, item: Inbound) -> Any:
    from zapd.connectors.events import MessageEvent
    from zapd.db.types import utcnow

    now = utcnow()
    jid = item.phone[1:] + "@s.whatsapp.net"
    return MessageEvent(
        session_id=session_id,
        at=now,
        wa_message_id=_message_id(),
        chat_jid=jid,
        sender_jid=jid,
        body=item.text,
        timestamp=now,
    )


async def drive(
    daemon: Any,
    session_id: uuid.UUID,
    mix: Iterator[Inbound],
    *,
    duration: float | None = None,
    count: int | None = None,
    rate: float | None = None,
    concurrency: int = 32,
) -> Sent:
    """Hand the mix to `receive` for `duration` seconds (or `count` events); drain; time it."""
    inbound = daemon.inbound
    sent = Sent()
    chains: dict[str, asyncio.Task[None]] = {}
    slots = asyncio.Semaphore(MAX_OPEN_LOOP_IN_FLIGHT if rate else concurrency)
    tasks: set[asyncio.Task[None]] = set()

    async def one(item: Inbound, before: asyncio.Task[None] | None) -> None:
        try:
            if before is not None and not before.done():
                await asyncio.wait([before])
            await inbound.receive(session_id, _event(session_id, item))
        except Exception as exc:
            sent.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            slots.release()

    begin = time.perf_counter()
    for i, item in enumerate(mix):
        due = begin + i / rate if rate else time.perf_counter()
        if (duration is not None and due - begin >= duration) or (count is not None and i >= count):
            break
        if rate:
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        await slots.acquire()
        if item.kind == "assigned":
            sent.due[item.text] = due
        sent.kinds[item.kind] = sent.kinds.get(item.kind, 0) + 1
        sent.events += 1
        task = asyncio.create_task(one(item, chains.get(item.phone)))
        chains[item.phone] = task
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)
    await drained(daemon)
    sent.seconds = time.perf_counter() - begin
    if sent.errors:
        raise BenchError(
            f"the pipeline refused {len(sent.errors)} of {sent.events} events: {sent.errors[0]}"
        )
    return sent


async def pending(daemon: Any) -> int:
    """Count stored inbound events not processed yet."""
    from sqlalchemy import func, select

    from shared.enums import WebhookEventState
    from zapd.db.models import WebhookEvent

    async with daemon.kernel.read() as db:
        n = await db.scalar(
            select(func.count())
            .select_from(WebhookEvent)
            .where(WebhookEvent.state == WebhookEventState.PENDING)
        )
    return int(n or 0)


async def drained(daemon: Any) -> None:
    """Wait until no stored event is PENDING (the pipeline may process after `receive`)."""
    last, since = -1, time.perf_counter()
    while True:
        left = await pending(daemon)
        if left == 0:
            return
        if left != last:
            last, since = left, time.perf_counter()
        elif time.perf_counter() - since > DRAIN_STALL_SECONDS:
            raise BenchError(f"the pipeline left {left} stored events unprocessed")
        await asyncio.sleep(0.005)


async def failed(daemon: Any) -> int:
    """Count stored inbound events the pipeline gave up on (poison)."""
    from sqlalchemy import func, select

    from shared.enums import WebhookEventState
    from zapd.db.models import WebhookEvent

    async with daemon.kernel.read() as db:
        n = await db.scalar(
            select(func.count())
            .select_from(WebhookEvent)
            .where(WebhookEvent.state == WebhookEventState.FAILED)
        )
    return int(n or 0)


async def seed_assigned(daemon: Any, seeded: Seeded, n: int, prefix: int) -> list[str]:
    """Make `n` customers whose ticket the first agent holds (through the real pipeline)."""
    from sqlalchemy import select

    from shared.enums import Role, TicketStatus
    from zapd.db.models import Client, Ticket
    from zapd.kernel.principal import Actor, Principal
    from zapd.services.tickets import lifecycle

    numbers = list(itertools.islice(phones(prefix), n))
    for text in ("oi", "1"):
        await drive(
            daemon,
            seeded.session_id,
            iter([Inbound("seed", p, text) for p in numbers]),
            count=len(numbers),
            concurrency=16,
        )
    agent = Actor(
        Principal(
            user_id=seeded.agent_ids[0],
            company_id=seeded.company_id,
            role=Role.AGENT,
            name="Agente 0",
            department_ids=frozenset({seeded.department_ids[0]}),
        )
    )
    async with daemon.kernel.read() as db:
        waiting = list(
            await db.scalars(
                select(Ticket.id)
                .join(Client, Client.id == Ticket.client_id)
                .where(
                    Ticket.company_id == seeded.company_id,
                    Ticket.status == TicketStatus.PENDING,
                    Ticket.department_id == seeded.department_ids[0],
                    Client.phone.in_(numbers),
                )
            )
        )
    if len(waiting) != n:
        raise BenchError(f"seeding: {len(waiting)} of {n} customers reached the queue")
    for ticket_id in waiting:
        async with daemon.kernel.tx() as db:
            await lifecycle.accept(db, agent, ticket_id)
    return numbers
