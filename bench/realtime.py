"""Fan-out benchmark: events/s that reach N WebSocket clients over loopback.

`ws_fanout_bench()` runs zapd (real app, uvicorn, SQLite in a temporary directory),
connects N clients, commits events through `events.publish` in small transactions and
times until every client has received every event. In the same run it times a baseline:
a plain `websockets` server with no zap logic pushing the same number of frames of the
same size to N clients. Two zap figures: end to end (each transaction commits on SQLite,
then fans out) and fan-out only (the same events, already committed, handed to the hub
the way the after-commit hooks do), which isolates the realtime path from the disk.
Clients of both run in this process, so the client-side cost (the same for both) is
part of every figure; the ratios are what to watch.

    python -c "import asyncio; from bench.realtime import ws_fanout_bench as b; \\
print(asyncio.run(b()))"
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy.ext.asyncio import AsyncSession
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve

from shared.enums import Role
from zapd.api.app import create_app
from zapd.config import ZapdSettings
from zapd.daemon import open_daemon
from zapd.db.engine import create_engine
from zapd.db.models import Base, Company, Department, Event, User, UserDepartment
from zapd.kernel import events
from zapd.kernel.context import Kernel
from zapd.services.people import auth

log = logging.getLogger("bench.realtime")

_CNPJ = "11222333000181"  # a valid CNPJ (check digits) for the throw-away company


@dataclass(frozen=True)
class FanoutResult:
    """What one run measured."""

    n_clients: int
    n_events: int
    # End to end: commit (SQLite) -> after-commit fan-out -> every client has it.
    zap_seconds: float
    zap_events_per_s: float  # events delivered (summed over clients) per second
    # Fan-out only: events already committed, handed to the hub as the hooks would.
    fanout_seconds: float
    fanout_events_per_s: float
    # Plain websockets server pushing frames of the same size, no zap logic.
    baseline_seconds: float
    baseline_events_per_s: float
    ratio: float  # zap (end to end) / baseline
    fanout_ratio: float  # zap (fan-out only) / baseline
    frame_bytes: int  # size of one event frame (before compression)

    def as_dict(self) -> dict[str, Any]:
        """Return the figures as a plain dict."""
        return asdict(self)


async def ws_fanout_bench(
    n_clients: int = 100,
    n_events: int = 500,
    *,
    events_per_tx: int = 10,
    time_limit: float = 50.0,
) -> FanoutResult:
    """Measure zap's WebSocket fan-out against a plain websockets baseline (bounded time)."""
    async with asyncio.timeout(time_limit):
        zap_seconds, fanout_seconds, frame = await _zap_run(n_clients, n_events, events_per_tx)
        base_seconds = await _baseline_run(n_clients, n_events, frame)
    delivered = n_clients * n_events
    zap_rate = delivered / zap_seconds
    fanout_rate = delivered / fanout_seconds
    base_rate = delivered / base_seconds
    return FanoutResult(
        n_clients=n_clients,
        n_events=n_events,
        zap_seconds=round(zap_seconds, 3),
        zap_events_per_s=round(zap_rate),
        fanout_seconds=round(fanout_seconds, 3),
        fanout_events_per_s=round(fanout_rate),
        baseline_seconds=round(base_seconds, 3),
        baseline_events_per_s=round(base_rate),
        ratio=round(zap_rate / base_rate, 3),
        fanout_ratio=round(fanout_rate / base_rate, 3),
        frame_bytes=len(frame.encode()),
    )


async def _receive(conn: ClientConnection, n: int) -> list[int | None]:
    """Receive `n` frames; return their seqs."""
    seqs: list[int | None] = []
    for _ in range(n):
        seqs.append(json.loads(await conn.recv()).get("seq"))
    return seqs


async def _connect_all(url: str, n: int, headers: list[dict[str, str]]) -> list[ClientConnection]:
    conns: list[ClientConnection] = []
    for start in range(0, n, 20):  # a few at a time: the listen backlog stays happy
        conns += await asyncio.gather(
            *(
                connect(url, additional_headers=headers[i], max_queue=None, open_timeout=20)
                for i in range(start, min(n, start + 20))
            )
        )
    return conns


async def _seed(kernel: Kernel, n_clients: int) -> tuple[uuid.UUID, uuid.UUID, list[str]]:
    """Create a company, a department and one user per client; return their tokens."""
    async with kernel.tx() as db:
        company = Company(name="Bench", cnpj=_CNPJ)
        db.add(company)
        await db.flush()
        dep = Department(company_id=company.id, name="Laboratório", slug="laboratorio")
        db.add(dep)
        await db.flush()
        pw = kernel.passwords.hash("bench-password")
        users = []
        for i in range(n_clients):
            role = Role.AGENT if i % 2 else Role.ADMIN  # agents exercise the visibility rule
            user = User(
                company_id=company.id,
                email=f"bench{i}@zap.local",
                name=f"Bench {i}",
                role=role,
                password_hash=pw,
            )
            db.add(user)
            users.append(user)
        await db.flush()
        for user in users:
            if user.role == Role.AGENT:
                db.add(UserDepartment(user_id=user.id, department_id=dep.id, company_id=company.id))
        tokens = [auth.encode_access(kernel, u, uuid.uuid4()) for u in users]
        return company.id, dep.id, tokens


async def _zap_run(n_clients: int, n_events: int, per_tx: int) -> tuple[float, float, str]:
    tmp = Path(tempfile.mkdtemp(prefix="zapbench"))
    settings = ZapdSettings(
        state_dir=tmp / "state",
        database_url=f"sqlite+aiosqlite:///{tmp / 'bench.db'}",
        auto_migrate=False,
        jwt_secret="bench-secret-" + "x" * 40,
        argon2_time_cost=1,
        argon2_memory_kib=64,
        ws_queue_size=max(1000, 4 * per_tx),
    )
    engine = create_engine(settings.db_url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    daemon = await open_daemon(settings, engine=engine)
    kernel = daemon.kernel
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, daemon),
            host="127.0.0.1",
            port=0,
            lifespan="on",
            log_config=None,
            log_level="warning",
            access_log=False,
            ws_ping_interval=settings.ws_ping_interval,
            ws_ping_timeout=settings.ws_ping_timeout,
        )
    )
    task = asyncio.create_task(server.serve())
    conns: list[ClientConnection] = []
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        company_id, dep_id, tokens = await _seed(kernel, n_clients)
        headers = [{"Authorization": f"Bearer {t}"} for t in tokens]
        conns = await _connect_all(f"ws://127.0.0.1:{port}/api/v1/ws", n_clients, headers)
        if daemon.hub.client_count != n_clients:  # subscribed during the handshake
            raise AssertionError(f"{daemon.hub.client_count} of {n_clients} clients subscribed")
        await asyncio.sleep(0.2)  # let every feed finish its start-up read

        async def publish(first: int, db: AsyncSession) -> list[Event]:
            return [
                await events.publish(
                    db, company_id, "message.new", _payload(i), department_id=dep_id
                )
                for i in range(first, min(n_events, first + per_tx))
            ]

        # 1. End to end: each transaction commits, then its events fan out.
        readers = [asyncio.create_task(_receive(c, n_events)) for c in conns]
        started = time.perf_counter()
        for first in range(0, n_events, per_tx):
            async with kernel.tx() as db:
                await publish(first, db)
        results = await asyncio.gather(*readers)
        end_to_end = time.perf_counter() - started
        # 2. Fan-out only: the same events already committed, handed to the hub as the
        # after-commit hooks would, one transaction's worth at a time.
        batches: list[list[Event]] = []
        for first in range(0, n_events, per_tx):
            async with kernel.sessions() as db, db.begin():  # no after-commit hooks run
                batches.append(await publish(first, db))
        readers = [asyncio.create_task(_receive(c, n_events)) for c in conns]
        started = time.perf_counter()
        for batch in batches:
            for ev in batch:
                daemon.hub.dispatch(ev)
            await asyncio.sleep(0)
        results = [a + b for a, b in zip(results, await asyncio.gather(*readers), strict=True)]
        fanout = time.perf_counter() - started
        expected = list(range(1, 2 * n_events + 1))
        if any(seqs != expected for seqs in results):
            raise AssertionError("a client missed, repeated or reordered events")
        sample = {"seq": n_events, "type": "message.new", "company_id": str(company_id)}
        frame = json.dumps(
            {**sample, "data": _payload(n_events)}, separators=(",", ":"), ensure_ascii=False
        )
        return end_to_end, fanout, frame
    finally:
        for c in conns:
            await c.close()
        server.should_exit = True
        await asyncio.wait_for(task, 15)
        await daemon.hub.close_all()
        await engine.dispose()
        shutil.rmtree(tmp, ignore_errors=True)


def _payload(i: int) -> dict[str, Any]:
    """A typical message.new payload."""
    return {
        "id": str(uuid.uuid4()),
        "ticket_id": str(uuid.uuid4()),
        "direction": 0,
        "type": 0,
        "status": 6,
        "body": f"Olá, gostaria de saber o resultado do meu exame número {i}.",
        "created_at": "2026-01-01T12:00:00+00:00",
    }


async def _baseline_run(n_clients: int, n_events: int, frame: str) -> float:
    go = asyncio.Event()
    frames = [frame.replace(f'"seq":{n_events}', f'"seq":{i}', 1) for i in range(1, n_events + 1)]

    async def handler(conn: ServerConnection) -> None:
        await go.wait()
        for text in frames:
            await conn.send(text)
        await conn.wait_closed()

    async with serve(handler, "127.0.0.1", 0, max_queue=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        conns = await _connect_all(f"ws://127.0.0.1:{port}", n_clients, [{}] * n_clients)
        try:
            readers = [asyncio.create_task(_receive(c, n_events)) for c in conns]
            started = time.perf_counter()
            go.set()
            results = await asyncio.gather(*readers)
            elapsed = time.perf_counter() - started
            if any(len(seqs) != n_events for seqs in results):
                raise AssertionError("baseline lost frames")
            return elapsed
        finally:
            for c in conns:
                await c.close()
