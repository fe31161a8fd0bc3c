"""Crash safety of the batched pipeline: SIGKILL while a batch is half applied.

A real zapd takes a first wave of customers (acknowledged, processed). On PostgreSQL
the test then holds the company row (FOR NO KEY UPDATE: the batch's KEY SHARE lock
does not conflict with it) and sends a second wave of new customers: the batch that
stores and processes them runs its first statements (its raw events, the reads...)
and waits on the company's ticket counter, where zapd is SIGKILLed. That batch
committed nothing, its raw events neither, and none of its events was acknowledged.
On SQLite (one writer, which cannot be held from outside without also stopping zapd's
every write) zapd is killed while the second wave's batches run.

After the restart, whatever raw events were committed before the kill are processed
by the start-up recovery without any redelivery (nothing acknowledged is lost); then
every message is delivered again and each must exist exactly once, one ticket per
customer, every flow reply queued once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, text

from shared.enums import MessageDirection, WebhookEventState
from tests.helpers import is_sqlite
from tests.zapd.test_crash import PER_CUSTOMER, _check, _deliver, _setup, _start, initialized
from tests.zapd.test_crash import _wait_connected as wait_connected
from zapd.db.engine import create_engine, session_factory
from zapd.db.models import Message, WaSession, WebhookEvent

CUSTOMERS = int(os.environ.get("ZAP_CRASH_BATCH_CUSTOMERS", "24"))  # two waves of half


def _burst(first: int, count: int) -> list[list[tuple[str, str]]]:
    """Per customer (its index is its phone), what it sends; nothing outside [first, count)."""
    texts = ["oi", "1"] + [f"mensagem {i}" for i in range(PER_CUSTOMER - 2)]
    return [
        [(f"CRASH-{c}-{i}", t) for i, t in enumerate(texts)] if first <= c < count else []
        for c in range(CUSTOMERS)
    ]


async def _counts(url: str) -> tuple[int, int]:
    """Pending raw message events (not acks of the menu replies), and inbound messages."""
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as db:
            pending = await db.scalar(
                select(func.count())
                .select_from(WebhookEvent)
                .where(
                    WebhookEvent.state == WebhookEventState.PENDING,
                    WebhookEvent.event_type == "message",
                )
            )
            inbound = await db.scalar(
                select(func.count())
                .select_from(Message)
                .where(Message.direction == MessageDirection.INBOUND)
            )
            return int(pending or 0), int(inbound or 0)
    finally:
        await engine.dispose()


async def _kill_mid_batch(
    zapd_base: str, url: str, auth: dict[str, str], sid: str, proc: subprocess.Popen[bytes]
) -> int:
    """Send the second wave and SIGKILL zapd while a batch of it is half applied."""
    wave = _burst(CUSTOMERS // 2, CUSTOMERS)
    if is_sqlite(url):
        total = sum(len(w) for w in wave)
        accepted = await _deliver(zapd_base, auth, sid, wave, total // 3, proc)
        return accepted
    engine = create_engine(url)
    try:
        async with engine.connect() as holder:
            company = await holder.scalar(
                select(WaSession.company_id).where(WaSession.id == uuid.UUID(sid))
            )
            await holder.execute(
                text("SELECT id FROM companies WHERE id = :c FOR NO KEY UPDATE"), {"c": company}
            )
            sending = asyncio.create_task(_deliver(zapd_base, auth, sid, wave))
            for _ in range(600):
                await asyncio.sleep(0.05)
                async with engine.connect() as probe:
                    waiting = await probe.scalar(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                            " AND query LIKE 'UPDATE companies%'"
                            " AND datname = current_database()"
                        )
                    )
                if waiting:
                    break
            else:
                async with engine.connect() as probe:
                    seen = (
                        await probe.execute(
                            text(
                                "SELECT wait_event_type, state, left(query, 80) FROM"
                                " pg_stat_activity WHERE datname = current_database()"
                            )
                        )
                    ).all()
                raise AssertionError(f"no batch seen waiting on the company row: {seen}")
            proc.send_signal(signal.SIGKILL)
            accepted = await sending
            await holder.rollback()  # the killed backend's transaction never commits
        return accepted
    finally:
        await engine.dispose()


@pytest.mark.timeout(600)
def test_sigkill_in_the_middle_of_a_batch(database_url: str, tmp_path: Path) -> None:
    env, argv, port, inspect_url = initialized(database_url, tmp_path)
    log = tmp_path / "zapd.log"
    first = _burst(0, CUSTOMERS // 2)
    everyone = _burst(0, CUSTOMERS)
    total = CUSTOMERS * PER_CUSTOMER

    zapd = _start(argv, env, log, port)
    try:
        auth, sid = asyncio.run(_setup(zapd.base_url))
        assert asyncio.run(_deliver(zapd.base_url, auth, sid, first)) == total // 2
        asyncio.run(_kill_mid_batch(zapd.base_url, inspect_url, auth, sid, zapd.proc))
    finally:
        if zapd.proc.poll() is None:
            zapd.proc.send_signal(signal.SIGKILL)  # never leave it running on a failure
    zapd.proc.wait(30)
    assert zapd.proc.returncode == -signal.SIGKILL
    pending_at_kill, inbound_at_kill = asyncio.run(_counts(inspect_url))
    if not is_sqlite(inspect_url):  # killed mid-batch: nothing of it committed
        assert pending_at_kill == 0 and inbound_at_kill == total // 2

    zapd = _start(argv, env, log, port)  # the start-up recovery processes them
    try:
        pending, inbound = asyncio.run(_counts(inspect_url))
        assert pending == 0
        # Every raw event committed before the kill became its message, with no redelivery.
        assert inbound >= inbound_at_kill + pending_at_kill

        async def again() -> int:
            async with httpx.AsyncClient(base_url=zapd.base_url, timeout=30) as http:
                await wait_connected(http, sid, auth)
            return await _deliver(zapd.base_url, auth, sid, everyone)

        assert asyncio.run(again()) == total  # everything, again: at-least-once
    finally:
        assert zapd.stop() == 0

    got = asyncio.run(_check(inspect_url))
    assert got["inbound"] == total, got
    assert got["distinct"] == total, got
    assert got["clients"] == CUSTOMERS, got
    assert got["tickets"] == CUSTOMERS, got
    assert got["routed"] == CUSTOMERS, got
    assert got["unread_ok"] == CUSTOMERS, got
    assert got["replies"] == [2] and got["replied_tickets"] == CUSTOMERS, got
    assert got["pending_events"] == 0 and got["failed_events"] == 0, got
