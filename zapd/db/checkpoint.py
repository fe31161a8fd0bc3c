"""SQLite WAL checkpoints off the write path: a thread of their own, not the committer.

In WAL mode a commit appends the transaction's pages to the `-wal` file; a checkpoint
copies them back into the database file (with synchronous=NORMAL, syncing both). By
default the connection that commits runs it, inside its COMMIT, whenever the WAL holds
1,000 pages (`wal_autocheckpoint`); zapd has one writer at a time, so every writer
queued behind that COMMIT waited for the copy too. Measured on the ingest pipeline: a
batch's COMMIT took 3.2-3.7 ms with them, 1.5-1.6 ms without (ingest x1.08 in
alternating runs).

`WalCheckpointer`, one of the daemon's workers, runs `PRAGMA wal_checkpoint(PASSIVE)`
on a connection of its own, from a thread of its own, every `INTERVAL` seconds: PASSIVE
waits for no reader and no writer, and copies what is committed; a commit only appends.
Under sustained writes the WAL then grows to the committers' bound before it restarts
(a restart needs a writer that began after a complete checkpoint, and the next batch
begins while the thread is still copying the last one's pages): measured, 44 MB at
most, against ~4 MB with SQLite's default. The committing connections
keep `wal_autocheckpoint` at `zapd.db.engine.SQLITE_WAL_AUTOCHECKPOINT_PAGES` (set with
the other PRAGMAs), far more than the checkpointer lets the WAL hold: should the thread
stop or fall behind, a writer checkpoints as before, later; a process without one
(zapctl's offline commands, a migration) is bounded the same way.

Invariants:
- durability is unchanged: a commit is as durable as synchronous=NORMAL makes it once
  it is in the WAL, whichever connection copies it into the database file later;
- the checkpointer's connection is used by its thread only, and closed by it; `stop`
  returns once the thread has closed it (before the engine is disposed); a
  checkpointer dropped without `stop` ends its thread at the next tick;
- a failed checkpoint is logged and retried next time (the writers' bound remains);
- in-memory databases (no WAL) and other backends get no thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import weakref
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from zapd.db.engine import sqlite_connector

log = logging.getLogger("zapd.db")

INTERVAL = 0.1  # seconds between checkpoints (the WAL grows a few MB/s under load)


class WalCheckpointer:
    """Checkpoints one SQLite engine's WAL from a thread (see the module docstring)."""

    def __init__(self, engine: AsyncEngine, interval: float = INTERVAL) -> None:
        self.interval = interval
        self.checkpoints = 0  # PRAGMA wal_checkpoint runs completed
        # The last run's answer: (busy, pages in the WAL, of them in the database file).
        self.last: tuple[int, int, int] | None = None
        self._connect: Callable[[], sqlite3.Connection] | None = sqlite_connector(engine)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    async def start(self) -> None:
        """Start the thread (nothing for an in-memory SQLite or another backend)."""
        if self._connect is None or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=_run,
            args=(weakref.ref(self), self._stop, self._connect, self.interval),
            name="zap-wal-checkpoint",
            daemon=True,
        )
        self._thread.start()

    async def stop(self) -> None:
        """Stop the thread; returns once its connection is closed."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        await asyncio.to_thread(thread.join)


def _run(
    owner: weakref.ref[WalCheckpointer],
    stop: threading.Event,
    connect: Callable[[], sqlite3.Connection],
    interval: float,
) -> None:
    """The thread: checkpoint every `interval` until stopped (or its owner is gone)."""
    conn: sqlite3.Connection | None = None
    try:
        while not stop.wait(interval):
            if owner() is None:
                return
            try:
                if conn is None:
                    conn = connect()
                    conn.isolation_level = None  # autocommit: no transaction left open
                row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error as exc:  # the writers' own bound stays meanwhile
                log.warning("WAL checkpoint failed: %s", exc)
                if conn is not None:
                    with contextlib.suppress(sqlite3.Error):
                        conn.close()
                conn = None
                continue
            checkpointer = owner()
            if checkpointer is not None:
                checkpointer.last = (int(row[0]), int(row[1]), int(row[2]))
                checkpointer.checkpoints += 1
            del checkpointer  # the thread keeps no reference between ticks
    finally:
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
