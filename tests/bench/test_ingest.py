"""`bench ingest`: one tiny run per backend; the report's figures come from that run.

No speed is asserted: only that every figure was measured (positive), that the ratios
are the quotients of the figures beside them, and that the ceilings wrote the rows the
pipeline wrote (one raw event row per event, at least one message per event).
"""

from __future__ import annotations

import os
from pathlib import Path

from bench import ingest
from bench.common import fresh_database


async def test_ingest_reports_the_pipeline_beside_its_ceilings(
    bench_db: str, tmp_path: Path
) -> None:
    async with fresh_database(bench_db, tmp_path) as db:
        report = await ingest.run(db, tmp_path, duration=0.5, rate=None, concurrency=8, assigned=2)
    assert report["bench"] == "ingest"
    assert report["database"] == ("sqlite" if bench_db == "sqlite" else "postgresql")
    pipe = report["pipeline"]
    events = pipe["events"]
    assert events >= 5 and pipe["events_per_s"] > 0 and pipe["seconds"] > 0
    assert pipe["failed_events"] == 0
    # The phase's CPU was measured: some per event, and a share of the wall time that
    # one process can reach (every thread's: at most the machine's cores).
    assert pipe["cpu_us_per_event"] > 0 and 0 < pipe["cpu_share"] <= (os.cpu_count() or 1)
    assert pipe["batches_rerun"] == 0 and pipe["events_alone"] == 0  # all straight runs
    assert set(pipe["mix"]) == {"new", "menu", "assigned"}
    assert sum(pipe["mix"].values()) == events
    per_table = report["rows_per_table"]
    assert per_table["webhook_events"] == events
    assert per_table["messages"] >= events
    assert report["rows"]["total"] == sum(per_table.values())
    one = report["ceiling_one_tx_per_event"]["events_per_s"]
    many = report["ceiling_executemany_100"]["events_per_s"]
    assert one > 0 and many > 0
    goal = report["target_events_per_s"]  # shown, never asserted as a speed
    assert goal["at_least"] == (1500.0 if bench_db == "sqlite" else 1000.0)
    assert goal["met"] is (pipe["events_per_s"] >= goal["at_least"])
    ratios = report["ratios"]
    assert ratios["pipeline_vs_one_tx_per_event"] == round(pipe["events_per_s"] / one, 3)
    assert ratios["pipeline_vs_executemany_100"] == round(pipe["events_per_s"] / many, 3)
