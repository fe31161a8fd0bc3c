"""The daemon's own lifecycle: what `close` releases."""

from __future__ import annotations

import secrets
from pathlib import Path

from zapd.config import ZapdSettings
from zapd.daemon import open_daemon


async def test_close_stops_the_storage_workers_started_without_the_rest(tmp_path: Path) -> None:
    """A bench starts only the WAL checkpointer and the statistics refresher; `close`
    stops them even so (a refresher left running would query a dropped database)."""
    settings = ZapdSettings(
        state_dir=tmp_path / "state",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'zap.db'}",
        auto_migrate=True,
        jwt_secret=secrets.token_urlsafe(48),
        argon2_time_cost=1,
        argon2_memory_kib=1024,
    )
    daemon = await open_daemon(settings)
    await daemon.checkpointer.start()
    await daemon.stats.start()
    checkpoints = daemon.checkpointer._thread
    stats_task = daemon.stats._task
    assert checkpoints is not None and checkpoints.is_alive()
    assert stats_task is not None and not stats_task.done()
    await daemon.stop_background()  # nothing started through it: a no-op
    await daemon.close()
    assert not checkpoints.is_alive() and daemon.checkpointer._thread is None
    assert stats_task.done() and daemon.stats._task is None
