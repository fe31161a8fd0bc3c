"""`fanout`: events committed by zapd reaching N agents' WebSockets, against plain websockets.

zapd serves its API in this process on the chosen database; `clients` agents connect
to `WS /api/v1/ws` (each reads its `hello` frame first: the feed's position, not an
event). For `duration` seconds (paced at `rate` events/s, or as fast as the commits
go) transactions of `per_tx` `message.new` events are committed through
`events.publish`; after each commit the hub fans them out. The figures: deliveries/s
(events x clients over the time until every client had every event), and the
latency of each delivery, from the start of its event's transaction to its arrival.
Every client must get every event once, in seq order, or the run fails.

The baseline, in the same run: a plain `websockets` server with no zap logic pushing
the same number of frames of the same size to the same number of clients. Clients of
both run in this process (their cost is in both figures); the ratio is what travels.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import (
    BenchError,
    Database,
    daemon_on,
    latency_ms,
    per_second,
    ratio,
    seed_company,
    serving,
)
from bench.latency import agent_socket

RECEIVE_WAIT = 60.0


def _payload(i: int, at: float) -> dict[str, Any]:
    """A typical message.new payload, plus when its transaction started."""
    return {
        "id": str(uuid.uuid4()),
        "ticket_id": str(uuid.uuid4()),
        "direction": 0,
        "type": 0,
        "status": 6,
        "body": f"Olá, gostaria de saber o resultado do meu exame número {i}.",
        "created_at": "2026-01-01T12:00:00+00:00",
        "bench_t": at,
    }


class _Reader:
    """One client: counts frames, checks their seqs, keeps each delivery's latency."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.seqs: list[int] = []
        self.waits: list[float] = []
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for frame in self.conn:
            now = time.perf_counter()
            ev = json.loads(frame)
            if ev.get("seq") is None:
                continue  # pong, typing
            self.seqs.append(int(ev["seq"]))
            at = (ev.get("data") or {}).get("bench_t")
            if at is not None:
                self.waits.append(now - float(at))


async def _connect_all(url: str, tokens: list[str]) -> list[Any]:
    conns: list[Any] = []
    for start in range(0, len(tokens), 20):  # a few at a time: the listen backlog stays happy
        conns += await asyncio.gather(*(agent_socket(url, t) for t in tokens[start : start + 20]))
    return conns


async def _zap(
    db: Database, workdir: Path, clients: int, per_tx: int, duration: float, rate: float | None
) -> tuple[int, float, list[float], str]:
    from zapd.kernel import events

    daemon_cm = daemon_on(db, workdir, ws_queue_size=max(1000, 4 * per_tx))
    async with daemon_cm as daemon, serving(daemon) as url:
        seeded = await seed_company(daemon.kernel, agents=clients)
        conns = await _connect_all(url, seeded.agent_tokens)
        readers = [_Reader(c) for c in conns]
        try:
            published = 0
            began = time.perf_counter()
            while time.perf_counter() - began < duration:
                if rate:
                    delay = began + published / rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                at = time.perf_counter()
                async with daemon.kernel.tx() as tx:
                    for i in range(published, published + per_tx):
                        await events.publish(
                            tx,
                            seeded.company_id,
                            "message.new",
                            _payload(i, at),
                            department_id=seeded.department_ids[0],
                        )
                published += per_tx
            deadline = time.perf_counter() + RECEIVE_WAIT
            while any(len(r.seqs) < published for r in readers):
                if time.perf_counter() > deadline:
                    got = min(len(r.seqs) for r in readers)
                    raise BenchError(f"a client got {got} of {published} events")
                await asyncio.sleep(0.005)
            elapsed = time.perf_counter() - began
            for r in readers:
                first = r.seqs[0] if r.seqs else 0
                if r.seqs != list(range(first, first + published)):
                    raise BenchError("a client missed, repeated or reordered events")
            frame = json.dumps(
                {
                    "seq": published,
                    "type": "message.new",
                    "company_id": str(seeded.company_id),
                    "data": _payload(published, at),
                },
                separators=(",", ":"),
                ensure_ascii=False,
            )
            return published, elapsed, [w for r in readers for w in r.waits], frame
        finally:
            for r in readers:
                r.task.cancel()
            for c in conns:
                with contextlib.suppress(Exception):
                    await c.close()


async def _baseline(clients: int, n_events: int, frame: str) -> tuple[float, list[float]]:
    """Plain websockets: push `n_events` frames like `frame` to `clients` clients."""
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import ServerConnection, serve

    go = asyncio.Event()

    async def handler(conn: ServerConnection) -> None:
        await go.wait()
        for i in range(1, n_events + 1):
            await conn.send(frame.replace('"seq":', f'"seq":{i},"_":', 1))
        await conn.wait_closed()

    async with serve(handler, "127.0.0.1", 0, max_queue=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        conns: list[Any] = []
        for start in range(0, clients, 20):
            conns += await asyncio.gather(
                *(
                    connect(f"ws://127.0.0.1:{port}", max_queue=None, open_timeout=20)
                    for _ in range(start, min(clients, start + 20))
                )
            )
        waits: list[float] = []

        async def read(conn: Any) -> None:
            for _ in range(n_events):
                await conn.recv()
                waits.append(time.perf_counter() - began)

        try:
            began = time.perf_counter()
            go.set()
            await asyncio.wait_for(asyncio.gather(*(read(c) for c in conns)), RECEIVE_WAIT)
            return time.perf_counter() - began, waits
        finally:
            for c in conns:
                await c.close()


async def run(
    db: Database,
    workdir: Path,
    *,
    clients: int,
    per_tx: int,
    duration: float,
    rate: float | None,
) -> dict[str, Any]:
    """Measure zap's fan-out and the plain-websockets baseline."""
    n, seconds, waits, frame = await _zap(db, workdir, clients, per_tx, duration, rate)
    base_seconds, _ = await _baseline(clients, n, frame)
    zap_rate = per_second(n * clients, seconds)
    base_rate = per_second(n * clients, base_seconds)
    return {
        "bench": "fanout",
        "database": db.kind,
        "clients": clients,
        "events": n,
        "events_per_tx": per_tx,
        "frame_bytes": len(frame.encode()),
        "zap": {
            "seconds": round(seconds, 3),
            "deliveries_per_s": zap_rate,
            "delivery_latency": latency_ms(waits),
        },
        "baseline_websockets": {"seconds": round(base_seconds, 3), "deliveries_per_s": base_rate},
        "ratio": ratio(zap_rate, base_rate),
    }
