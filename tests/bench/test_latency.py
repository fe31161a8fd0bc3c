"""`bench latency`: a tiny paced run per backend; every assigned message reached the agent."""

from __future__ import annotations

from pathlib import Path

from bench import latency
from bench.common import fresh_database


async def test_latency_times_every_message_at_the_agent(bench_db: str, tmp_path: Path) -> None:
    async with fresh_database(bench_db, tmp_path) as db:
        report = await latency.run(db, tmp_path, duration=0.5, rate=20.0, assigned=2)
    assert report["bench"] == "latency"
    assert report["offered_events_per_s"] == 20.0
    assert report["events"] >= 5 and report["achieved_events_per_s"] > 0
    assert report["missing_messages"] == 0
    assert report["outbox_sent"] > 0  # the bot's replies went out beside the measurement
    assert report["measured_messages"] == report["mix"]["assigned"] > 0
    lat = report["latency"]
    assert 0 < lat["p50_ms"] <= lat["p95_ms"] <= lat["p99_ms"] <= lat["max_ms"]
