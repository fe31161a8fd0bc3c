"""Same-run ceilings: the rows a measured phase inserted, written again by the raw driver.

After a phase, `captured` reads (with the raw driver, so values stay in the driver's own
types) every row of zapd's tables whose primary key was not there before the phase,
in dependency order (parents before children). `ceiling` deletes them and writes them
back into the same database, same ids, same indexes and constraints, timed, in one of
two ways:

- one transaction per event: the rows split into as many transactions as the phase
  had events, one INSERT statement per row;
- batched: one transaction per `per_tx` events' worth of rows, one executemany per
  run of rows of the same table.

Only inserts are replayed: the phase's updates of rows that existed before (counters,
sequence numbers, ticket states) are not, so the ceiling is bare durable storage of
what the phase produced, nothing more.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bench.common import Raw


@dataclass
class Captured:
    """New rows per table, in dependency order."""

    tables: list[tuple[str, list[str], list[str], list[tuple[Any, ...]]]]  # name, cols, pk, rows

    @property
    def count(self) -> int:
        return sum(len(rows) for *_, rows in self.tables)

    def flat(self) -> list[tuple[str, list[str], tuple[Any, ...]]]:
        """Every row with its table and columns, parents first."""
        return [(name, cols, row) for name, cols, _, rows in self.tables for row in rows]

    def per_table(self) -> dict[str, int]:
        return {name: len(rows) for name, _, _, rows in self.tables if rows}


def _tables() -> list[tuple[str, list[str], list[str]]]:
    from zapd.db.models import Base

    out = []
    for table in Base.metadata.sorted_tables:
        cols = [c.name for c in table.columns]
        pk = [c.name for c in table.primary_key.columns]
        out.append((table.name, cols, pk))
    return out


def _quote(name: str) -> str:
    return f'"{name}"'


async def keys(raw: Raw) -> dict[str, set[tuple[Any, ...]]]:
    """Return the primary keys present now, per table."""
    out: dict[str, set[tuple[Any, ...]]] = {}
    for name, _, pk in _tables():
        cols = ", ".join(_quote(c) for c in pk)
        out[name] = set(await raw.fetch(f"SELECT {cols} FROM {_quote(name)}"))  # noqa: S608
    return out


async def captured(raw: Raw, before: dict[str, set[tuple[Any, ...]]]) -> Captured:
    """Return the rows whose primary key is not in `before`."""
    tables = []
    for name, cols, pk in _tables():
        listed = ", ".join(_quote(c) for c in cols)
        rows = await raw.fetch(f"SELECT {listed} FROM {_quote(name)}")  # noqa: S608
        at = [cols.index(c) for c in pk]
        old = before.get(name, set())
        new = [r for r in rows if tuple(r[i] for i in at) not in old]
        tables.append((name, cols, pk, new))
    return Captured(tables)


async def delete(raw: Raw, rows: Captured) -> None:
    """Delete the captured rows (children first) in one transaction."""
    await raw.begin()
    for name, cols, pk, found in reversed(rows.tables):
        if not found:
            continue
        at = [cols.index(c) for c in pk]
        where = " AND ".join(f"{_quote(c)} = ?" for c in pk)
        await raw.executemany(
            f"DELETE FROM {_quote(name)} WHERE {where}",  # noqa: S608
            [tuple(r[i] for i in at) for r in found],
        )
    await raw.commit()


def insert_sql(name: str, cols: list[str]) -> str:
    listed = ", ".join(_quote(c) for c in cols)
    marks = ", ".join("?" for _ in cols)
    return f"INSERT INTO {_quote(name)} ({listed}) VALUES ({marks})"  # noqa: S608


def slices(n: int, parts: int) -> list[tuple[int, int]]:
    parts = max(1, parts)
    return [(n * i // parts, n * (i + 1) // parts) for i in range(parts)]


async def one_tx_per_event(raw: Raw, rows: Captured, events: int) -> float:
    """Insert the rows in `events` transactions, one statement per row; return seconds."""
    flat = rows.flat()
    statements = {name: insert_sql(name, cols) for name, cols, _, _ in rows.tables}
    started = time.perf_counter()
    for lo, hi in slices(len(flat), events):
        await raw.begin()
        for name, _, row in flat[lo:hi]:
            await raw.execute(statements[name], row)
        await raw.commit()
    return time.perf_counter() - started


async def batched(raw: Raw, rows: Captured, events: int, per_tx: int = 100) -> float:
    """Insert the rows `per_tx` events' worth per transaction with executemany; seconds."""
    flat = rows.flat()
    statements = {name: insert_sql(name, cols) for name, cols, _, _ in rows.tables}
    transactions = max(1, -(-events // per_tx))
    started = time.perf_counter()
    for lo, hi in slices(len(flat), transactions):
        await raw.begin()
        chunk = flat[lo:hi]
        i = 0
        while i < len(chunk):
            name = chunk[i][0]
            j = i
            while j < len(chunk) and chunk[j][0] == name:
                j += 1
            await raw.executemany(statements[name], [r for _, _, r in chunk[i:j]])
            i = j
        await raw.commit()
    return time.perf_counter() - started
