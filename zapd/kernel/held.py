"""New rows of one transaction held out of the ORM session and inserted together.

A batch of work that creates many rows of a few kinds (the inbound pipeline: clients,
identities, chats, tickets, messages, outbox rows) pays the unit of work's flush for
each one when they go through the session, and must flush each parent before adding a
child (the models declare no relationships, so the session does not order inserts by
foreign key). `Held` keeps them aside instead and inserts them with one Core
executemany per table, parents first (the metadata's foreign-key order), then
attaches the objects to the session as persistent and clean, so later changes to them
are ordinary ORM updates.

Invariants:
- `add` fills every column default at once (ids, timestamps, counters): a held object
  reads like a flushed one before it is inserted, and the insert writes exactly what
  the object holds.
- Nothing in the session may reference a held row when the session flushes: the holder
  calls `insert` first (or the database refuses the flush with a foreign-key error,
  never a wrong row). A held object is not in the session: queries do not see it.
- Raw rows (`add_row`, dicts of column values) go in with the objects of their table.
- On SQLite the inserts ride with the transaction's next statement or its commit
  (`zapd.db.sqlite_driver.writes_behind`): one thread trip instead of one per table;
  an insert's error is raised there, and fails the transaction all the same.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Table, inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from zapd.db.models import Base
from zapd.db.sqlite_driver import writes_behind


@functools.cache
def _table_order() -> dict[str, int]:
    return {t.name: i for i, t in enumerate(Base.metadata.sorted_tables)}


_COLUMNS: dict[type[Any], tuple[tuple[str, str, Any], ...]] = {}


def _columns(model: type[Any]) -> tuple[tuple[str, str, Any], ...]:
    """(attribute, column key, column default or None) of a model's columns."""
    found = _COLUMNS.get(model)
    if found is None:
        found = _COLUMNS[model] = tuple(
            (prop.key, prop.columns[0].key, prop.columns[0].default)
            for prop in inspect(model).column_attrs
        )
    return found


def fill_defaults(obj: Any) -> None:
    """Set every unset column of `obj` that has a Python-side default to that default."""
    values = obj.__dict__
    for attr, _, default in _columns(type(obj)):
        if default is None or values.get(attr) is not None:
            continue
        value = default.arg(None) if default.is_callable else default.arg
        setattr(obj, attr, value)


class Held:
    """Rows waiting for one insert per table (see the module docstring)."""

    def __init__(self) -> None:
        self._objects: dict[type[Any], list[Any]] = {}
        self._rows: dict[type[Any], list[dict[str, Any]]] = {}

    def __bool__(self) -> bool:
        return bool(self._objects or self._rows)

    def add(self, obj: Any) -> Any:
        """Hold a new ORM object (not in the session); return it."""
        fill_defaults(obj)
        self._objects.setdefault(type(obj), []).append(obj)
        return obj

    def add_row(self, model: type[Any], row: dict[str, Any]) -> None:
        """Hold a raw row of `model`'s table (every column it needs, defaults included)."""
        self._rows.setdefault(model, []).append(row)

    async def insert(self, db: AsyncSession) -> None:
        """Insert every held row, parents first; attach the held objects to `db`."""
        if not self:
            return
        order = _table_order()
        models = sorted(
            set(self._objects) | set(self._rows),
            key=lambda m: order[m.__table__.name],
        )
        objects, rows = self._objects, self._rows
        self._objects, self._rows = {}, {}
        connection = await (await db.connection()).get_raw_connection()
        with writes_behind(connection.driver_connection):
            await self._insert(db, models, objects, rows)
        for model in models:
            for obj in objects.get(model, ()):
                make_transient_to_detached(obj)
                db.add(obj)

    @staticmethod
    async def _insert(
        db: AsyncSession,
        models: list[type[Any]],
        objects: dict[type[Any], list[Any]],
        rows: dict[type[Any], list[dict[str, Any]]],
    ) -> None:
        for model in models:
            table: Table = model.__table__
            batch = [
                {key: obj.__dict__.get(attr) for attr, key, _ in _columns(model)}
                for obj in objects.get(model, ())
            ]
            if batch:
                await db.execute(table.insert(), batch)
            by_keys: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            for row in rows.get(model, ()):
                by_keys.setdefault(tuple(row), []).append(row)
            for group in by_keys.values():
                await db.execute(table.insert(), group)
