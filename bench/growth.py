"""`growth`: ingest with no history vs with a large history, as a ratio.

Two fresh databases on the same backend (the one asked for, and a sibling: a second
SQLite file beside it, or a second scratch database on the same server), each with one
company. Into the second a history is written, fast and not timed (the raw driver,
10,000 messages per transaction: executemany on SQLite, COPY on PostgreSQL):
`clients` customers, each with its phone identity, chat and a closed ticket, and
`messages` messages spread over them. Then the ingest phase of bench.ingest (seeded
assigned customers, the greeting-menu mix through `Inbound.receive`, with customers
never seen before each time) runs on each database in turn, `ROUNDS` times for
`duration / ROUNDS` seconds, in the order empty, full / full, empty / ... (a drift of
the host's speed, or a warm-up, favours neither side). Each round gives a ratio of the
two rates; the figure is their median (one disturbed round does not make it), beside
the totals. 1.0: flat.

After the bulk load the history gets zapd's own statistics refresher
(`zapd.db.stats.refresh`: on SQLite the tables whose size moved, on PostgreSQL the
tables with rows and no statistics), which the daemon runs after each migration and
every 10 minutes — the benchmark's in-process daemon runs no such worker, so it
is called once here, as the running daemon (or autovacuum) would within minutes of
such growth.
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from bench import rows
from bench.common import (
    Database,
    Raw,
    Seeded,
    daemon_on,
    fresh_database,
    per_second,
    ratio,
    seed_company,
    target,
)
from bench.traffic import Mix, drive, failed, phones, seed_assigned
from shared.enums import (
    ChatType,
    ClientIdentityKind,
    FlowState,
    MessageDirection,
    MessageStatus,
    MessageType,
    Priority,
    TicketStatus,
)
from zapd.db import stats
from zapd.db.types import new_id, utcnow

TARGET_RATIO = 0.9  # issue #14, judged at 1M messages / 100k clients of history
TARGET_SIZE = (1_000_000, 100_000)
SEED_BATCH = 10_000  # rows per executemany
HISTORY_PREFIX = 50  # phone prefix of the history's customers (bench.traffic.phones)
ROUNDS = 3  # phases per side, alternating (see the module docstring)


async def _phase(
    daemon: Any,
    seeded: Seeded,
    prefix: int,
    *,
    duration: float,
    rate: float | None,
    conc: int,
    assigned: int,
) -> dict[str, Any]:
    customers = await seed_assigned(daemon, seeded, assigned, prefix)
    sent = await drive(
        daemon,
        seeded.session_id,
        iter(Mix(customers, phones(prefix + 1))),
        duration=duration,
        rate=rate,
        concurrency=conc,
    )
    return {
        "events": sent.events,
        "seconds": round(sent.seconds, 3),
        "events_per_s": per_second(sent.events, sent.seconds),
        "failed_events": await failed(daemon),
    }


def _converter(sample: Any, sqlite: bool) -> Callable[[Any], Any] | None:
    """Return how a column's Python values become what the raw driver stores (None: as is).

    The same conversions SQLAlchemy's types make (zapd.db.types): on SQLite UUIDs as 32
    hex digits, datetimes as naive UTC text, booleans as 0/1; enums as their integer;
    JSON as text on both (asyncpg takes jsonb as text).
    """
    if isinstance(sample, bool):
        return int if sqlite else None
    if isinstance(sample, IntEnum):
        return int
    if isinstance(sample, uuid.UUID):
        return (lambda v: v.hex) if sqlite else None
    if isinstance(sample, datetime):
        return (lambda v: v.astimezone(UTC).replace(tzinfo=None).isoformat(" ")) if sqlite else None
    if isinstance(sample, dict):
        return json.dumps
    return None


async def _bulk(raw: Raw, table: str, batch: list[dict[str, Any]], sqlite: bool) -> None:
    if not batch:
        return
    cols = list(batch[0])
    convert = [_converter(batch[0][c], sqlite) for c in cols]
    records = [
        tuple(v if f is None else f(v) for f, v in zip(convert, row.values(), strict=True))
        for row in batch
    ]
    if sqlite:
        await raw.executemany(rows.insert_sql(table, cols), records)
    else:  # COPY: PostgreSQL's bulk path
        await raw.conn.copy_records_to_table(table, records=records, columns=cols)


def _history(
    seeded: Seeded, clients: int, messages: int, first_number: int
) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Yield the history's rows, a few thousand at a time, per table (parents first)."""
    company, session = seeded.company_id, seeded.session_id
    dep, agent = seeded.department_ids[0], seeded.agent_ids[0]
    source = phones(HISTORY_PREFIX)
    base = utcnow() - timedelta(days=365)
    per_client = max(1, messages // max(1, clients))
    step = max(1, SEED_BATCH // per_client)  # clients per transaction
    written, number = 0, first_number
    for lo in range(0, clients, step):
        batch: dict[str, list[dict[str, Any]]] = {
            "clients": [],
            "client_identities": [],
            "chats": [],
            "tickets": [],
            "messages": [],
        }
        for i in range(lo, min(clients, lo + step)):
            phone = next(source)
            at = base + timedelta(seconds=i)
            client_id, chat_id, ticket_id = new_id(), new_id(), new_id()
            batch["clients"].append(
                {
                    "id": client_id,
                    "company_id": company,
                    "phone": phone,
                    "wa_user_id": phone[1:] + "@s.whatsapp.net",
                    "blocked": False,
                    "custom_fields": {},
                    "created_at": at,
                    "updated_at": at,
                }
            )
            batch["client_identities"].append(
                {
                    "id": new_id(),
                    "company_id": company,
                    "client_id": client_id,
                    "kind": ClientIdentityKind.PHONE,
                    "value": phone,
                    "created_at": at,
                }
            )
            batch["chats"].append(
                {
                    "id": chat_id,
                    "company_id": company,
                    "session_id": session,
                    "client_id": client_id,
                    "wa_chat_id": phone[1:] + "@s.whatsapp.net",
                    "type": ChatType.DIRECT,
                    "unread_count": 0,
                    "archived": False,
                    "last_message_at": at,
                    "created_at": at,
                    "updated_at": at,
                }
            )
            number += 1
            batch["tickets"].append(
                {
                    "id": ticket_id,
                    "company_id": company,
                    "number": number,
                    "client_id": client_id,
                    "session_id": session,
                    "chat_id": chat_id,
                    "department_id": dep,
                    "assignee_id": agent,
                    "status": TicketStatus.CLOSED,
                    "flow_state": FlowState.ROUTED,
                    "flow_data": {},
                    "priority": Priority.NORMAL,
                    "unread_count": 0,
                    "reopen_count": 0,
                    "closed_at": at,
                    "last_message_at": at,
                    "created_at": at,
                    "updated_at": at,
                }
            )
            share = per_client if i < clients - 1 else messages - written
            share = max(0, min(share, messages - written))
            for k in range(share):
                inbound = k % 2 == 0
                batch["messages"].append(
                    {
                        "id": new_id(),
                        "company_id": company,
                        "session_id": session,
                        "chat_id": chat_id,
                        "ticket_id": ticket_id,
                        "direction": MessageDirection.INBOUND
                        if inbound
                        else MessageDirection.OUTBOUND,
                        "type": MessageType.TEXT,
                        "status": MessageStatus.RECEIVED if inbound else MessageStatus.READ,
                        "body": f"mensagem antiga {k} do cliente {i}",
                        "wa_message_id": f"HIST{uuid.uuid4().hex.upper()}",
                        "is_note": False,
                        "extra": {},
                        "created_at": at,
                        "updated_at": at,
                    }
                )
            written += share
        yield batch


async def seed_history(
    daemon: Any, db: Database, seeded: Seeded, clients: int, messages: int
) -> float:
    """Write the history with the raw driver (see the module docstring); return seconds."""
    from sqlalchemy import select, update

    from zapd.db.models import Company

    started = time.perf_counter()
    engine = daemon.kernel.engine
    sqlite = db.kind == "sqlite"
    async with engine.begin() as conn:
        first = await conn.scalar(
            select(Company.last_ticket_number).where(Company.id == seeded.company_id)
        )
    last = int(first or 0) + clients
    async with Raw.connect(db) as raw:
        for batch in _history(seeded, clients, messages, int(first or 0)):
            await raw.begin()
            for table, found in batch.items():
                await _bulk(raw, table, found, sqlite)
            await raw.commit()
    async with engine.begin() as conn:  # the next ticket numbers follow the history's
        await conn.execute(
            update(Company).where(Company.id == seeded.company_id).values(last_ticket_number=last)
        )
    await stats.refresh(engine)
    return time.perf_counter() - started


async def _counts(daemon: Any, seeded: Seeded) -> tuple[int, int]:
    from sqlalchemy import func, select

    from zapd.db.models import Client, Message

    async with daemon.kernel.read() as db:
        clients = await db.scalar(
            select(func.count()).select_from(Client).where(Client.company_id == seeded.company_id)
        )
        messages = await db.scalar(
            select(func.count()).select_from(Message).where(Message.company_id == seeded.company_id)
        )
    return int(clients or 0), int(messages or 0)


def _sibling(db: Database, workdir: Path) -> str:
    """The `--db` spec of a second fresh database on the same backend as `db`."""
    if db.kind == "sqlite":
        return f"sqlite:///{workdir / 'growth-empty.db'}"
    return make_url(db.url).set(drivername="postgresql").render_as_string(hide_password=False)


async def run(
    db: Database,
    workdir: Path,
    *,
    duration: float,
    rate: float | None,
    concurrency: int,
    clients: int,
    messages: int,
    assigned: int = 20,
    rounds: int = ROUNDS,
) -> dict[str, Any]:
    """Write the history into `db`, then ingest on an empty sibling and on `db` in turn."""
    async with fresh_database(_sibling(db, workdir), workdir) as empty_db:
        async with daemon_on(empty_db, workdir) as daemon:
            empty_seeded = await seed_company(daemon.kernel)
        async with daemon_on(db, workdir) as daemon:
            seeded = await seed_company(daemon.kernel)
            seeding = await seed_history(daemon, db, seeded, clients, messages)
            stored = await _counts(daemon, seeded)
        sides = {"empty": (empty_db, empty_seeded), "full": (db, seeded)}
        phases: dict[str, list[dict[str, Any]]] = {"empty": [], "full": []}
        for r in range(rounds):
            for side in ("empty", "full") if r % 2 == 0 else ("full", "empty"):
                where, company = sides[side]
                # New customers each phase: prefixes 1, 3, 5... (empty), 11, 13... (full);
                # the history's are HISTORY_PREFIX.
                prefix = (1 if side == "empty" else 11) + 2 * r
                async with daemon_on(where, workdir) as daemon:
                    phases[side].append(
                        await _phase(
                            daemon,
                            company,
                            prefix,
                            duration=duration / rounds,
                            rate=rate,
                            conc=concurrency,
                            assigned=assigned,
                        )
                    )
    empty, full = _total(phases["empty"]), _total(phases["full"])
    per_round = [
        ratio(f["events_per_s"], e["events_per_s"])
        for e, f in zip(phases["empty"], phases["full"], strict=True)
    ]
    figure = round(statistics.median(per_round), 3)
    return {
        "bench": "growth",
        "database": db.kind,
        "history": {
            "clients": clients,
            "messages": messages,
            "seed_seconds": round(seeding, 1),
            "clients_in_database": stored[0],
            "messages_in_database": stored[1],
        },
        "rounds": rounds,
        "empty_history": empty,
        "with_history": full,
        "ratio_per_round": per_round,
        "ratio": figure,
        "ratio_of_totals": ratio(full["events_per_s"], empty["events_per_s"]),
        "target_ratio": (
            target(figure, at_least=TARGET_RATIO)
            if messages >= TARGET_SIZE[0] and clients >= TARGET_SIZE[1]
            else None
        ),
    }


def _total(phases: list[dict[str, Any]]) -> dict[str, Any]:
    """One side's rounds added up."""
    events = sum(p["events"] for p in phases)
    seconds = sum(p["seconds"] for p in phases)
    return {
        "events": events,
        "seconds": round(seconds, 3),
        "events_per_s": per_second(events, seconds),
        "failed_events": max(p["failed_events"] for p in phases),
    }
