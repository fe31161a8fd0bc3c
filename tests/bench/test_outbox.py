"""`bench outbox`: every queued message is sent through the no-op engine and recorded."""

from __future__ import annotations

from pathlib import Path

from bench import outbox
from bench.common import fresh_database


async def test_outbox_sends_everything_and_compares_with_raw_writes(
    bench_db: str, tmp_path: Path
) -> None:
    async with fresh_database(bench_db, tmp_path) as db:
        report = await outbox.run(db, tmp_path, duration=60, messages=20, chats=5)
    assert report["bench"] == "outbox"
    assert report["sent"] == report["engine_sends"] == 20
    zap = report["zap"]["sends_per_s"]
    ceiling = report["ceiling_one_tx_per_send"]["sends_per_s"]
    assert zap > 0 and ceiling > 0
    assert report["rows_per_send"] > 0  # status history, events: written again by the ceiling
    assert report["ratio"] == round(zap / ceiling, 3)
