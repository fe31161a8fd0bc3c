"""`ingest`: events/s through the whole inbound pipeline, beside two same-run ceilings.

On a fresh database, zapd (in this process) gets a company with a greeting menu and
`assigned` customers whose tickets an agent holds (seeded through the pipeline, not
timed). Then the greeting-menu mix (bench.traffic) goes through `Inbound.receive` for
`duration` seconds, as fast as the pipeline takes it with `concurrency` events in
flight (or paced at `rate`), until every stored event is processed. The figure is
events / that time.

The ceilings (bench.rows) are measured right after, on the same database: the very
rows the phase inserted, deleted and written again with the raw driver, one
transaction per event, then batched 100 events per transaction with executemany. The
ratios say how far the pipeline is from bare durable storage of its own output.

Beside events/s, the phase's CPU: this process's (every thread: the event loop, the
SQLite thread, the driver of the mix) per event, and as a share of the phase's wall
time (1.0: one core busy throughout). A share well under 1 means the pipeline waits
(on the database server, or on the SQLite thread's commits) more than it computes;
the figure that helps read where a change's gain or loss came from.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench import rows
from bench.common import Database, Raw, daemon_on, per_second, ratio, seed_company, target
from bench.traffic import Mix, drive, failed, phones, seed_assigned

BATCH = 100  # events per transaction of the batched ceiling
TARGET = {"sqlite": 1500.0, "postgresql": 1000.0}  # issue #14, greeting-menu mix


async def run(
    db: Database,
    workdir: Path,
    *,
    duration: float,
    rate: float | None,
    concurrency: int,
    assigned: int,
) -> dict[str, Any]:
    """Measure the pipeline, then both ceilings on the same database."""
    async with daemon_on(db, workdir) as daemon:
        seeded = await seed_company(daemon.kernel)
        customers = await seed_assigned(daemon, seeded, assigned, prefix=1)
        mix = Mix(customers, phones(2))
        async with Raw.connect(db) as raw:
            before = await rows.keys(raw)
        reruns_before, alone_before = daemon.inbound.reruns, daemon.inbound.alone
        cpu_before = time.process_time()
        sent = await drive(
            daemon,
            seeded.session_id,
            iter(mix),
            duration=duration,
            rate=rate,
            concurrency=concurrency,
        )
        cpu = time.process_time() - cpu_before
        poison = await failed(daemon)
        reruns = daemon.inbound.reruns - reruns_before
        alone = daemon.inbound.alone - alone_before
    async with Raw.connect(db) as raw:
        new = await rows.captured(raw, before)
        await rows.delete(raw, new)
        one = await rows.one_tx_per_event(raw, new, sent.events)
        await rows.delete(raw, new)
        many = await rows.batched(raw, new, sent.events, BATCH)
    pipeline = per_second(sent.events, sent.seconds)
    one_rate = per_second(sent.events, one)
    many_rate = per_second(sent.events, many)
    return {
        "bench": "ingest",
        "database": db.kind,
        "pipeline": {
            "events": sent.events,
            "mix": sent.kinds,
            "seconds": round(sent.seconds, 3),
            "events_per_s": pipeline,
            "failed_events": poison,
            # A straight run that failed is run again (correct, slower): a rise here
            # explains a drop in events/s.
            "batches_rerun": reruns,
            "events_alone": alone,
            "cpu_us_per_event": round(1e6 * cpu / sent.events, 1) if sent.events else None,
            "cpu_share": ratio(cpu, sent.seconds),
            "concurrency": None if rate else concurrency,
            "rate": rate,
        },
        "rows": {"total": new.count, "per_event": ratio(new.count, sent.events)},
        "rows_per_table": new.per_table(),
        "ceiling_one_tx_per_event": {"seconds": round(one, 3), "events_per_s": one_rate},
        f"ceiling_executemany_{BATCH}": {"seconds": round(many, 3), "events_per_s": many_rate},
        "ratios": {
            "pipeline_vs_one_tx_per_event": ratio(pipeline, one_rate),
            f"pipeline_vs_executemany_{BATCH}": ratio(pipeline, many_rate),
        },
        "target_events_per_s": target(pipeline, at_least=TARGET[db.kind]),
    }
