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

The WAL file keeps its size when it restarts (it is overwritten from the start, not
shortened). So once the WAL has stayed still for `QUIET_SECONDS` (no commit), fully
copied and at least `TRUNCATE_PAGES` pages long, the thread runs one
`wal_checkpoint(TRUNCATE)`, which empties the file: a burst's 44 MB are given back
when it ends, not kept until the process stops. Its connection waits for no lock
(busy_timeout 0): a TRUNCATE that would have to wait (a writer began, a reader is on
an older snapshot) gives up at once and is tried again at the next quiet tick.

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
QUIET_SECONDS = 5.0  # a WAL still for this long is emptied (TRUNCATE)...
TRUNCATE_PAGES = 1_000  # ...when it holds at least this many pages (SQLite's own bound)


class WalCheckpointer:
    """Checkpoints one SQLite engine's WAL from a thread (see the module docstring)."""

    def __init__(
        self,
        engine: AsyncEngine,
        interval: float = INTERVAL,
        *,
        quiet_seconds: float = QUIET_SECONDS,
        truncate_pages: int = TRUNCATE_PAGES,
    ) -> None:
        self.interval = interval
        self.quiet_seconds = quiet_seconds
        self.truncate_pages = truncate_pages
        self.checkpoints = 0  # PRAGMA wal_checkpoint runs completed
        self.truncations = 0  # quiet WALs emptied
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
            args=(weakref.ref(self), self._stop, self._connect, self.interval, self._quiet()),
            name="zap-wal-checkpoint",
            daemon=True,
        )
        self._thread.start()

    def _quiet(self) -> tuple[int, int]:
        """(ticks a WAL must stay still, pages it must hold) before it is emptied."""
        return max(1, round(self.quiet_seconds / self.interval)), self.truncate_pages

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
    quiet: tuple[int, int],
) -> None:
    """The thread: checkpoint every `interval` until stopped (or its owner is gone)."""
    quiet_ticks, truncate_pages = quiet
    conn: sqlite3.Connection | None = None
    still = 0  # ticks the WAL has stayed the same, fully copied
    before: tuple[int, int, int] | None = None
    try:
        while not stop.wait(interval):
            if owner() is None:
                return
            truncated = False
            try:
                if conn is None:
                    conn = connect()
                    conn.isolation_level = None  # autocommit: no transaction left open
                    conn.execute("PRAGMA busy_timeout = 0")  # TRUNCATE: never wait
                row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                now = (int(row[0]), int(row[1]), int(row[2]))
                copied = now[0] == 0 and now[1] == now[2]
                still = still + 1 if copied and now == before else 0
                before = now
                if still >= quiet_ticks and now[1] >= truncate_pages:
                    truncated = _truncate(conn)
                    if truncated:
                        still, before = 0, None
            except sqlite3.Error as exc:  # the writers' own bound stays meanwhile
                log.warning("WAL checkpoint failed: %s", exc)
                if conn is not None:
                    with contextlib.suppress(sqlite3.Error):
                        conn.close()
                conn, still, before = None, 0, None
                continue
            checkpointer = owner()
            if checkpointer is not None:
                checkpointer.last = now
                checkpointer.checkpoints += 1
                checkpointer.truncations += truncated
            del checkpointer  # the thread keeps no reference between ticks
    finally:
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()


def _truncate(conn: sqlite3.Connection) -> bool:
    """Empty the WAL file; False when that would have to wait (tried again later)."""
    try:
        row = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.OperationalError:  # locked: someone began meanwhile
        return False
    return int(row[0]) == 0
