"""`bench growth`: a small history really written; the ratio is the median of the rounds'.

The issue's size (1M messages, 100k clients) is the command's default; tests use a
small one (ZAP_TEST_BENCH_GROWTH=messages,clients for a bigger one on demand).
"""

from __future__ import annotations

import os
from pathlib import Path

from bench import growth
from bench.common import fresh_database

SIZE = os.environ.get("ZAP_TEST_BENCH_GROWTH", "2000,200")


async def test_growth_compares_ingest_with_and_without_history(
    bench_db: str, tmp_path: Path
) -> None:
    messages, clients = (int(x) for x in SIZE.split(","))
    async with fresh_database(bench_db, tmp_path) as db:
        report = await growth.run(
            db,
            tmp_path,
            duration=0.4,
            rate=None,
            concurrency=8,
            clients=clients,
            messages=messages,
            assigned=2,
            rounds=2,
        )
    assert report["bench"] == "growth"
    history = report["history"]
    assert history["clients_in_database"] >= clients
    assert history["messages_in_database"] >= messages
    empty, full = report["empty_history"], report["with_history"]
    for phase in (empty, full):
        assert phase["events"] > 0 and phase["events_per_s"] > 0
        assert phase["failed_events"] == 0
    if messages < growth.TARGET_SIZE[0] or clients < growth.TARGET_SIZE[1]:  # issue size only
        assert report["target_ratio"] is None
    assert report["rounds"] == 2 and len(report["ratio_per_round"]) == 2
    assert all(r > 0 for r in report["ratio_per_round"])
    assert report["ratio"] == round(sum(report["ratio_per_round"]) / 2, 3)  # median of two
    assert report["ratio_of_totals"] == round(full["events_per_s"] / empty["events_per_s"], 3)
