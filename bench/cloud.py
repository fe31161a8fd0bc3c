"""Cloud API webhooks under a burst: webhook-to-committed latency, p50 / p99.

    python -m bench.cloud --db sqlite [--webhooks 1000 --customers 200 --concurrency 50]
    python -m bench.cloud --db postgresql+asyncpg://postgres@127.0.0.1:5432/scratch

A real zapd serves on a loopback port (uvicorn, in this process) with one Cloud API
session whose Graph API is the contract fake (tests/fakes/graph_api.py), so the greeting
menus the burst triggers really go out. `webhooks` signed bodies (one text message each,
`customers` customers writing in turn) are posted with `concurrency` in flight, as Meta
does. Two figures per webhook:

- committed: from sending the POST to zapd's 200, which is answered only once the raw
  body is committed (what Meta waits for; its own target is a median of 250 ms or less);
- processed: from sending the POST to the message row being committed by the pipeline
  (client, chat, ticket, flow), read back from `messages.created_at`.

Figures are same-run measurements on the machine at hand, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import func, select

from shared.cnpj import cnpj_check_digits
from shared.enums import Engine, MessageDirection
from tests.fakes.graph_api import FakeGraph, contact, inbound
from zapd.api.app import create_app
from zapd.config import ZapdSettings
from zapd.daemon import open_daemon
from zapd.db.models import Company, Department, Message, WaSession


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bench_cloud(
    db_url: str | None, webhooks: int = 1000, customers: int = 200, concurrency: int = 50
) -> dict[str, Any]:
    """Run the burst and return the figures."""
    fake = await FakeGraph().start()
    with tempfile.TemporaryDirectory(prefix="zap-bench-cloud-") as tmp:
        settings = ZapdSettings(
            state_dir=Path(tmp),
            database_url=db_url or f"sqlite+aiosqlite:///{tmp}/bench.db",
            jwt_secret="bench-" + "s" * 40,
            log_level="warning",
        )
        daemon = await open_daemon(settings)
        kernel = daemon.kernel
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings, daemon),
                host="127.0.0.1",
                port=0,
                log_config=None,
                access_log=False,
                lifespan="on",
            )
        )
        task = asyncio.create_task(server.serve())
        try:
            for _ in range(3000):
                if server.started:
                    break
                await asyncio.sleep(0.01)
            url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
            tag = int(time.time()) % 10_000_000
            base = f"{tag:08d}0001"
            async with kernel.tx() as db:
                company = Company(name=f"Bench {tag}", cnpj=base + cnpj_check_digits(base))
                db.add(company)
                await db.flush()
                for order, name in enumerate(("Laboratório", "Comercial"), start=1):
                    db.add(
                        Department(
                            company_id=company.id, name=name, slug=name.lower(), menu_order=order
                        )
                    )
                session = WaSession(
                    company_id=company.id,
                    name="meta",
                    engine=Engine.CLOUD,
                    config=daemon.secret_box.seal(
                        {
                            "phone_number_id": fake.phone_number_id,
                            "access_token": fake.access_token,
                            "app_secret": fake.app_secret,
                            "base_url": fake.url,
                        }
                    ),
                )
                db.add(session)
                await db.flush()
                session_id = session.id
            await daemon.engines.start(session_id)
            hook = f"{url}/webhooks/cloud/{session_id}"

            bodies: list[tuple[str, bytes]] = []
            for i in range(webhooks):
                phone = f"55119{70000000 + i % customers}"
                text = "oi" if i < customers else ("1" if i < 2 * customers else f"msg {i}")
                msg = inbound("text", {"body": text}, sender=phone, wamid=f"wamid.BENCH{tag}.{i}")
                doc = fake.webhook(messages=[msg], contacts=[contact(phone, f"Cliente {i}")])
                bodies.append((str(msg["id"]), json.dumps(doc).encode()))

            sent_at: dict[str, float] = {}
            committed: list[float] = []
            queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
            for item in bodies:
                queue.put_nowait(item)
            limits = httpx.Limits(max_connections=concurrency)
            async with httpx.AsyncClient(timeout=60, limits=limits) as client:

                async def worker() -> None:
                    while not queue.empty():
                        wamid, body = queue.get_nowait()
                        headers = {
                            "Content-Type": "application/json",
                            "X-Hub-Signature-256": fake.signed(body),
                        }
                        sent_at[wamid] = time.time()
                        start = time.perf_counter()
                        r = await client.post(hook, content=body, headers=headers)
                        committed.append(time.perf_counter() - start)
                        if r.status_code != 200:
                            raise RuntimeError(f"webhook answered {r.status_code}: {r.text}")

                burst_start = time.perf_counter()
                await asyncio.gather(*(worker() for _ in range(concurrency)))
                burst_seconds = time.perf_counter() - burst_start

            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                async with kernel.read() as db:
                    done = await db.scalar(
                        select(func.count())
                        .select_from(Message)
                        .where(
                            Message.session_id == session_id,
                            Message.direction == MessageDirection.INBOUND,
                        )
                    )
                if done == webhooks:
                    break
                await asyncio.sleep(0.2)
            async with kernel.read() as db:
                rows = (
                    await db.execute(
                        select(Message.wa_message_id, Message.created_at).where(
                            Message.session_id == session_id,
                            Message.direction == MessageDirection.INBOUND,
                        )
                    )
                ).all()
            processed = []
            for wamid, created in rows:
                if wamid is None:
                    continue
                stamp = created if created.tzinfo else created.replace(tzinfo=UTC)
                processed.append(
                    stamp.timestamp() - sent_at[wamid]
                    if isinstance(stamp, datetime)
                    else float("nan")
                )
            return {
                "backend": "sqlite" if db_url is None else db_url.split(":", 1)[0],
                "webhooks": webhooks,
                "customers": customers,
                "concurrency": concurrency,
                "burst_seconds": round(burst_seconds, 2),
                "webhooks_per_s": round(webhooks / burst_seconds, 1),
                "committed_ms": {
                    "p50": round(statistics.median(committed) * 1000, 1),
                    "p99": round(_pct(committed, 0.99) * 1000, 1),
                    "max": round(max(committed) * 1000, 1),
                },
                "processed": len(processed),
                "processed_ms": {
                    "p50": round(statistics.median(processed) * 1000, 1),
                    "p99": round(_pct(processed, 0.99) * 1000, 1),
                },
                "menus_sent": len(fake.sent),
            }
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 30)
            await fake.stop()


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and print the figures as one JSON document."""
    p = argparse.ArgumentParser(prog="python -m bench.cloud", description=__doc__.split("\n")[0])
    p.add_argument("--db", default="sqlite", help="sqlite, or a PostgreSQL URL")
    p.add_argument("--webhooks", type=int, default=1000)
    p.add_argument("--customers", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=50)
    args = p.parse_args(argv)
    db = None if args.db == "sqlite" else args.db
    result = asyncio.run(bench_cloud(db, args.webhooks, args.customers, args.concurrency))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
