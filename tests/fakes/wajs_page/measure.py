"""Measure the webjs engine against the fake page: memory (PSS) per session, start-up time.

    .venv/bin/python -m tests.fakes.wajs_page.measure [--sessions 1 3 10]

Each round starts N sessions (one Chromium each, the pinned wa-js bundle injected into
the fake page), links them, lets them settle, then sums the PSS of every browser's
process tree (/proc/<pid>/smaps_rollup) and of the one Playwright driver. Then it stops
them and starts them again on their profiles (already linked) to time a restore.

A LOWER BOUND: the fake page is tiny; real WhatsApp Web loads tens of MB of script and
keeps chats in memory, so a real session costs more than this.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from tests.fakes.wajs_page.server import FakeWhatsAppWeb
from tests.zapd.connectors.webjs.harness import eventually
from zapd.config import ZapdSettings
from zapd.connectors.events import AnyEngineEvent, QrEvent
from zapd.connectors.webjs import procs
from zapd.connectors.webjs.connector import WebjsConnector
from zapd.connectors.webjs.driver import WebjsDriver

MIB = 1 << 20


def _driver_pss() -> int:
    """PSS of the Playwright driver (node) processes that are our children."""
    total = 0
    for pid in procs.tree(os.getpid()):
        if pid == os.getpid():
            continue
        try:
            cmd = (procs.PROC / str(pid) / "cmdline").read_bytes()
        except OSError:
            continue
        if b"node" in cmd and b"playwright" in cmd:
            total += procs.pss_bytes(pid)
    return total


async def _round(n: int, root: Path) -> dict[str, Any]:
    fake = FakeWhatsAppWeb()
    url = await fake.start()
    settings = ZapdSettings(
        state_dir=root / f"n{n}",
        webjs_url=url,
        jwt_secret="m" * 48,
        webjs_start_concurrency=2,
        webjs_memory_limit_mb=0,
    )
    driver = WebjsDriver(settings)
    events: dict[uuid.UUID, list[AnyEngineEvent]] = {}

    def make(sid: uuid.UUID) -> WebjsConnector:
        async def sink(event: AnyEngineEvent) -> None:
            events.setdefault(sid, []).append(event)

        return WebjsConnector(sid, driver, sink)

    ids = [uuid.uuid4() for _ in range(n)]
    conns = [make(sid) for sid in ids]
    started = time.monotonic()
    first_qr: list[float] = []
    for conn in conns:
        t0 = time.monotonic()
        await conn.start()
        await eventually(
            lambda c=conn: [e for e in events.get(c.session_id, []) if isinstance(e, QrEvent)],
            within=120,
            every=0.02,
        )
        first_qr.append(time.monotonic() - t0)
    for i, conn in enumerate(conns):
        qr = next(e for e in events[conn.session_id] if isinstance(e, QrEvent))
        await fake.scan(qr.qr, f"+55119500{i:05d}")
    await eventually(lambda: all(c.connected for c in conns), within=300, every=0.05)
    linked_all = time.monotonic() - started
    await asyncio.sleep(3)  # let every renderer settle
    per = [c.memory() for c in conns]
    counts = [len(procs.tree(c.browser.pid)) for c in conns if c.browser and c.browser.pid]
    drv = _driver_pss()
    for conn in conns:
        await conn.stop()
    # Restore: the same profiles, already linked; all started at once (staggered by 2).
    conns = [make(sid) for sid in ids]
    t0 = time.monotonic()
    restore_each: list[float] = []

    async def one(conn: WebjsConnector) -> None:
        t = time.monotonic()
        await conn.start()
        await eventually(lambda: conn.connected, within=300, every=0.02)
        restore_each.append(time.monotonic() - t)

    await asyncio.gather(*(one(c) for c in conns))
    restore_all = time.monotonic() - t0
    for conn in conns:
        await conn.stop()
    await driver.shutdown()
    await fake.stop()
    return {
        "sessions": n,
        "browsers_pss_mib": round(sum(per) / MIB, 1),
        "per_browser_pss_mib": round(statistics.mean(per) / MIB, 1),
        "processes_per_browser": round(statistics.mean(counts), 1) if counts else 0,
        "playwright_driver_pss_mib": round(drv / MIB, 1),
        "first_qr_seconds_median": round(statistics.median(first_qr), 2),
        "linked_all_seconds": round(linked_all, 2),
        "restore_seconds_median": round(statistics.median(restore_each), 2),
        "restore_all_seconds": round(restore_all, 2),
        "leftover_browsers": len(
            [p for p in procs.pids() if str(root).encode() in _cmd(p) and procs.alive(p)]
        ),
    }


def _cmd(pid: int) -> bytes:
    try:
        return (procs.PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return b""


async def main(sizes: list[int]) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="zap-webjs-measure-") as tmp:
        return [await _round(n, Path(tmp)) for n in sizes]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 3, 10])
    results = asyncio.run(main(parser.parse_args().sessions))
    sys.stdout.write(json.dumps(results, indent=2) + "\n")
