"""How the inbound pipeline schedules its writes: latency, not only throughput.

On SQLite one writer runs at a time, so a company's raw group commits and processing
batches take turns. An event must be processed by the batch right after the group
commit that stored it: were that batch taken before its callers could queue, the event
would wait behind a batch of older events and then for its own (two batches of
latency instead of one). On PostgreSQL the two run side by side (no such turn).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from tests.zapd.api import seed
from tests.zapd.api.conftest import Live
from zapd.connectors.events import AnyEngineEvent


async def test_sqlite_processes_a_group_commit_in_the_next_batch(live: Live) -> None:
    if live.backend != "sqlite":
        pytest.skip("one writer at a time is SQLite's: PostgreSQL runs both side by side")
    t = await live.tenant()
    sid = await seed.session(live, t.company_id)
    inbound = live.daemon.inbound
    runs: list[tuple[str, set[uuid.UUID]]] = []
    store_rows, batch_tx = inbound._store_rows, inbound._batch_tx

    async def spy_store(company_id: uuid.UUID, batch: list[Any]) -> None:
        runs.append(("store", {row["id"] for row, _ in batch}))
        await store_rows(company_id, batch)

    async def spy_batch(
        company_id: uuid.UUID, items: list[tuple[uuid.UUID, AnyEngineEvent]], *, careful: bool
    ) -> Any:
        runs.append(("process", {row_id for row_id, _ in items}))
        return await batch_tx(company_id, items, careful=careful)

    inbound._store_rows = spy_store  # type: ignore[method-assign]
    inbound._batch_tx = spy_batch  # type: ignore[method-assign]
    # Events of distinct senders arrive one by one while earlier ones are processed,
    # until the pipeline took several turns (however fast or slow this machine is).
    tasks = []
    for i in range(300):
        ev = seed.says(sid, f"+5511990003{i:03d}", f"S-{i}")
        tasks.append(asyncio.create_task(inbound.receive(sid, ev)))
        await asyncio.sleep(0.002)
        if i >= 20 and len(runs) >= 8:
            break
    ids = await asyncio.gather(*tasks)
    assert len(runs) >= 8, runs  # several turns, or the test proves nothing
    for row_id in ids:
        stored = next(i for i, (k, rows) in enumerate(runs) if k == "store" and row_id in rows)
        after = next(i for i, (k, _) in enumerate(runs) if i > stored and k == "process")
        assert row_id in runs[after][1], (row_id, runs)


async def test_a_batch_queueing_on_its_own_leader_raises_instead_of_waiting(live: Live) -> None:
    if live.backend != "sqlite":
        pytest.skip("only SQLite's leader runs both queues")
    t = await live.tenant()
    sid = await seed.session(live, t.company_id)
    inbound = live.daemon.inbound
    batch_tx = inbound._batch_tx
    raised: list[RuntimeError] = []

    async def spy(
        company_id: uuid.UUID, items: list[tuple[uuid.UUID, AnyEngineEvent]], *, careful: bool
    ) -> Any:
        if not raised:  # what runs inside a batch stores an event: it would wait for itself
            try:
                await inbound.store(sid, seed.says(sid, "+5511990004999", "SELF-2"))
            except RuntimeError as exc:
                raised.append(exc)
        return await batch_tx(company_id, items, careful=careful)

    inbound._batch_tx = spy  # type: ignore[method-assign]
    row_id = await asyncio.wait_for(
        inbound.receive(sid, seed.says(sid, "+5511990004998", "SELF-1")), 30
    )
    assert raised and row_id is not None
