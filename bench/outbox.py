"""`outbox`: sends/s through zapd's outbox worker to an engine that does nothing, limits off.

On a fresh database, `messages` outbound texts are queued (not timed) over `chats`
chats of the seeded company, through the outbox service as an agent's send does. Then
zapd's `OutboxWorker` runs with an engine whose `send` returns at once, pacing off
(rate and burst far above anything reachable, no jitter): it claims, sends, records
each as SENT (message status, history, realtime event). The figure is sends/s until
every row is SENT, or `duration` ran out. A chat's messages go one at a time (the
outbox keeps order per chat), so `chats` bounds the parallelism.

The ceiling, in the same run and database: per send one raw-driver transaction that
writes what recording it wrote — the outbox row's and the message's updates, and the
rows the phase inserted (status history, events), deleted first and written again.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

from bench import rows
from bench.common import BenchError, Database, Raw, daemon_on, per_second, ratio, seed_company
from shared.enums import Engine
from zapd.connectors.base import OutboundMessage

QUEUE_BATCH = 100


class NoopEngine:
    """A connected engine that accepts every send at once, with no pacing of its own."""

    engine = Engine.SANDBOX
    connected = True
    rate_per_second = 1e9
    burst = 1_000_000
    jitter_ms = 0

    def __init__(self, session_id: uuid.UUID) -> None:
        self.session_id = session_id
        self.sent = 0

    async def start(self) -> None:
        """Nothing to connect."""

    async def stop(self) -> None:
        """Nothing to disconnect."""

    async def logout(self) -> None:
        """Nothing to unlink."""

    async def send(self, message: OutboundMessage) -> str:
        """Accept the message; return a new WhatsApp id."""
        self.sent += 1
        return f"BENCHOUT{uuid.uuid4().hex.upper()}"


async def _queue(
    daemon: Any, company_id: uuid.UUID, session_id: uuid.UUID, n: int, chats: int
) -> None:
    from zapd.db.models import Chat
    from zapd.services.delivery import outbox

    async with daemon.kernel.tx() as db:
        made = [
            Chat(
                company_id=company_id,
                session_id=session_id,
                wa_chat_id=f"55119{70000000 + i}@s.whatsapp.net",
            )
            for i in range(chats)
        ]
        db.add_all(made)
        await db.flush()
    for start in range(0, n, QUEUE_BATCH):
        async with daemon.kernel.tx() as db:
            for i in range(start, min(n, start + QUEUE_BATCH)):
                await outbox.enqueue(db, made[i % chats], f"Resposta número {i}", kind="agent")


async def _sent(daemon: Any) -> int:
    from sqlalchemy import func, select

    from shared.enums import OutboxState
    from zapd.db.models import Outbox

    async with daemon.kernel.read() as db:
        n = await db.scalar(
            select(func.count()).select_from(Outbox).where(Outbox.state == OutboxState.SENT)
        )
    return int(n or 0)


async def run(
    db: Database, workdir: Path, *, duration: float, messages: int, chats: int
) -> dict[str, Any]:
    """Queue, send through the no-op engine, then the raw ceiling."""
    from zapd.services.delivery.outbox_worker import OutboxWorker

    async with daemon_on(db, workdir, outbox_poll_interval=0.05) as daemon:
        seeded = await seed_company(daemon.kernel, agents=0)
        await _queue(daemon, seeded.company_id, seeded.session_id, messages, chats)
        async with Raw.connect(db) as raw:
            before = await rows.keys(raw)
        engine = NoopEngine(seeded.session_id)
        worker = OutboxWorker(daemon.kernel, connector_of=lambda _session_id: engine)
        began = time.perf_counter()
        await worker.start()
        try:
            done = 0
            while time.perf_counter() - began < duration:
                done = await _sent(daemon)
                if done >= messages:
                    break
                await asyncio.sleep(0.01)
            elapsed = time.perf_counter() - began
        finally:
            await worker.stop()
        done = await _sent(daemon)
    if done == 0:
        raise BenchError("the outbox sent nothing within --duration")
    async with Raw.connect(db) as raw:
        new = await rows.captured(raw, before)
        pairs = await raw.fetch(
            "SELECT id, message_id, state, sent_at FROM outbox WHERE state = ?", (2,)
        )
        statuses = dict(await raw.fetch("SELECT id, status FROM messages"))
        wa_ids = dict(await raw.fetch("SELECT id, wa_message_id FROM messages"))
        await rows.delete(raw, new)
        flat = new.flat()
        statements = {name: rows.insert_sql(name, cols) for name, cols, _, _ in new.tables}
        slices = rows.slices(len(flat), len(pairs))
        started = time.perf_counter()
        for (box, message, state, sent_at), (lo, hi) in zip(pairs, slices, strict=True):
            await raw.begin()
            await raw.execute(
                "UPDATE outbox SET state = ?, sent_at = ?, locked_until = NULL WHERE id = ?",
                (state, sent_at, box),
            )
            await raw.execute(
                "UPDATE messages SET status = ?, wa_message_id = ? WHERE id = ?",
                (statuses[message], wa_ids[message], message),
            )
            for name, _, row in flat[lo:hi]:
                await raw.execute(statements[name], row)
            await raw.commit()
        ceiling = time.perf_counter() - started
    zap = per_second(done, elapsed)
    raw_rate = per_second(len(pairs), ceiling)
    return {
        "bench": "outbox",
        "database": db.kind,
        "queued": messages,
        "chats": chats,
        "sent": done,
        "engine_sends": engine.sent,
        "zap": {"seconds": round(elapsed, 3), "sends_per_s": zap},
        "rows_per_send": ratio(new.count, done),
        "ceiling_one_tx_per_send": {"seconds": round(ceiling, 3), "sends_per_s": raw_rate},
        "ratio": ratio(zap, raw_rate),
    }
