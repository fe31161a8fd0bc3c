"""`bench fanout`: agents get every event once and in order; the ratio is of this run.

The fan-out benchmark used to read the WebSocket's `hello` frame as an event and fail;
its clients now read past it (bench.latency.agent_socket) and check each seq.
"""

from __future__ import annotations

from pathlib import Path

from bench import fanout
from bench.common import fresh_database


async def test_fanout_reaches_every_agent(bench_db: str, tmp_path: Path) -> None:
    async with fresh_database(bench_db, tmp_path) as db:
        report = await fanout.run(db, tmp_path, clients=3, per_tx=5, duration=0.3, rate=None)
    assert report["bench"] == "fanout" and report["clients"] == 3
    assert report["events"] >= 5 and report["events"] % 5 == 0
    zap, base = report["zap"], report["baseline_websockets"]
    assert zap["deliveries_per_s"] > 0 and base["deliveries_per_s"] > 0
    assert zap["delivery_latency"]["p99_ms"] > 0
    assert report["ratio"] == round(zap["deliveries_per_s"] / base["deliveries_per_s"], 3)
