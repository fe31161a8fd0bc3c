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
- The inserts bypass the ORM's mapper events, so `insert` writes what the one listener
  on an insert would (`zapd.db.search`: a new client's name search terms, from its
  names as they are at insert time); a raw `add_row` of a client gets none.
- `write_changes` (SQLite only: elsewhere it leaves the work to the flush, which
  costs no more there) queues what changed on the session's persistent objects of
  some models, one executemany UPDATE per model and set of columns (the onupdate
  columns stamped as a flush would), then leaves each object clean (its values
  committed, as after a flush; one whose attributes were set to what they held is
  made clean too): the flush that follows does not even look at them, and the
  UPDATEs ride with the next trip. It compares values as the flush does (an
  attribute set to its loaded value is no change).
- On SQLite the inserts ride with the transaction's next statement or its commit
  (`zapd.db.sqlite_driver.writes_behind`): one thread trip instead of one per table;
  an insert's error is raised there, and fails the transaction all the same. They are
  queued on the driver connection as plain SQL with every column's value converted by
  the column type's own bind processor (what SQLAlchemy would send; for `UTCDateTime`
  and `IntEnumType` an equivalent one-step function, `bind_processor`), sparing its
  per-statement and per-row machinery; a table with a column only the server fills
  in (no Python default) goes through SQLAlchemy instead. Elsewhere: one Core
  executemany per table and set of columns.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from sqlalchemy import Table, bindparam, inspect
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstanceState, Session
from sqlalchemy.orm.attributes import instance_state

from zapd.db.models import Base, Client, ClientTerm
from zapd.db.search import terms_of
from zapd.db.sqlite_driver import OneTripConnection, writes_behind
from zapd.db.types import IntEnumType, UTCDateTime


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


# The last datetime `_sqlite_utc` converted and its text: a batch stamps many columns
# and rows with one `now` (datetimes are immutable; the pair is replaced at once).
_LAST_UTC: tuple[datetime, str] = (datetime(1, 1, 1, tzinfo=UTC), "0001-01-01 00:00:00.000000")


def _sqlite_utc(value: datetime | None) -> str | None:
    """`UTCDateTime` then SQLite's DATETIME, as one step (`bind_processor`)."""
    global _LAST_UTC
    if value is None:
        return None
    last = _LAST_UTC
    if value is last[0]:
        return last[1]
    given = value
    if value.tzinfo is not UTC:
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
    text = value.isoformat(" ", "microseconds")[:26]  # without its "+00:00"
    _LAST_UTC = (given, text)
    return text


def _enum_processor(enum_class: type[IntEnum]) -> Callable[[Any], int | None]:
    def process(value: Any) -> int | None:
        if value is None:
            return None
        return int(value if type(value) is enum_class else enum_class(value))

    return process


def bind_processor(type_: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    """The function that turns a value of `type_` into what the driver is given.

    SQLAlchemy's own, except for two types of ours on SQLite, where it chains a
    Python-level `process_bind_param` and a `%`-format: `UTCDateTime` (the same text,
    "YYYY-MM-DD HH:MM:SS.ffffff" in UTC, from `isoformat`) and `IntEnumType` (the
    member's value). A test holds them equal to SQLAlchemy's.
    """
    if dialect.name == "sqlite":
        if isinstance(type_, UTCDateTime):
            return _sqlite_utc
        if isinstance(type_, IntEnumType):
            return _enum_processor(type_.enum_class)
    processor: Callable[[Any], Any] | None = type_.dialect_impl(dialect).bind_processor(dialect)
    return processor


# A table's plain INSERT: its SQL, and per column (key, default, bind processor).
_Plan = tuple[str, tuple[tuple[str, Any, Callable[[Any], Any] | None], ...]]
_PLANS: dict[tuple[str, str], _Plan | None] = {}


def _plan(table: Table, dialect: Dialect) -> _Plan | None:
    """The raw INSERT of every column of `table` (None: a column needs the server's default)."""
    key = (table.name, dialect.name)
    if key in _PLANS:
        return _PLANS[key]
    plan: _Plan | None = None
    if all(c.default is not None or c.server_default is None for c in table.columns):
        compiled = table.insert().compile(
            dialect=dialect, column_keys=[c.key for c in table.columns]
        )
        columns = {c.key: c for c in table.columns}
        order = compiled.positiontup or []
        if sorted(order) == sorted(columns):  # one placeholder per column, by key
            plan = (
                compiled.string,
                tuple(
                    (
                        name,
                        columns[name].default,
                        bind_processor(columns[name].type, dialect),
                    )
                    for name in order
                ),
            )
    _PLANS[key] = plan
    return plan


@functools.cache
def _complete(table: Table) -> bool:
    """Tell whether the client can fill every column (no column only the server fills)."""
    return all(c.default is not None or c.server_default is None for c in table.columns)


def _full(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    """`row` with every column it lacks set to its default (or NULL), in table order."""
    out = {}
    for c in table.columns:
        default: Any = c.default
        if c.key in row:
            out[c.key] = row[c.key]
        elif default is None:
            out[c.key] = None
        else:
            out[c.key] = default.arg(None) if default.is_callable else default.arg
    return out


def _values(plan: _Plan, row: dict[str, Any]) -> tuple[Any, ...]:
    out = []
    for key, default, process in plan[1]:
        if key in row:
            value = row[key]
        elif default is None:
            value = None
        else:
            value = default.arg(None) if default.is_callable else default.arg
        out.append(value if process is None else process(value))
    return tuple(out)


_UPDATES: dict[tuple[str, tuple[str, ...], str], _Plan] = {}
_PK = "held_pk"


def _update(table: Table, keys: tuple[str, ...], dialect: Dialect) -> _Plan:
    """The raw form of `UPDATE table SET keys... WHERE id = :held_pk`."""
    cache_key = (table.name, keys, dialect.name)
    found = _UPDATES.get(cache_key)
    if found is None:
        stmt = (
            table.update()
            .where(table.c.id == bindparam(_PK))
            .values({k: bindparam(k) for k in keys})
        )
        compiled = stmt.compile(dialect=dialect)
        types = {k: table.c[k].type for k in keys} | {_PK: table.c.id.type}
        plan: _Plan = (
            compiled.string,
            tuple(
                (name, None, bind_processor(types[name], dialect))
                for name in compiled.positiontup or []
            ),
        )
        found = _UPDATES[cache_key] = plan
    return found


async def write_changes(db: AsyncSession, models: tuple[type[Any], ...]) -> None:
    """Queue the changes of the session's objects of `models` (module docstring)."""
    connection = await db.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    if not isinstance(driver, OneTripConnection):
        return  # one executemany per shape from the flush costs the same
    groups: dict[tuple[type[Any], tuple[str, ...]], list[tuple[Any, dict[str, Any]]]] = {}
    identity_map = db.sync_session.identity_map
    for obj in list(db.dirty):
        model = type(obj)
        if model not in models:
            continue
        state = instance_state(obj)
        if not state.persistent:
            continue
        values = _changed(state) if state.committed_state else {}
        if not values:
            # Set to what it held (or flagged with nothing changed): clean again, as a
            # flush would leave it, so the flush has no object left to look at.
            state._commit_all(state.dict, identity_map)
            continue
        for attr, onupdate in _onupdates(model):
            if attr not in values:
                values[attr] = onupdate.arg(None) if onupdate.is_callable else onupdate.arg
        keys = tuple(sorted(values))
        groups.setdefault((model, keys), []).append((obj, values))
    for (model, keys), members in groups.items():
        names = {attr: key for attr, key, _ in _columns(model)}
        rows = [{names[a]: v for a, v in values.items()} | {_PK: obj.id} for obj, values in members]
        plan = _update(model.__table__, tuple(names[a] for a in keys), connection.dialect)
        driver.queue(plan[0], [_values(plan, row) for row in rows], True)
        for obj, values in members:
            state = instance_state(obj)
            state.dict.update(values)  # the onupdate stamps too, as a flush sets them
            state._commit_all(state.dict, identity_map)  # written: clean, as after a flush


def _changed(state: InstanceState[Any]) -> dict[str, Any]:
    """The attributes of `state` whose value differs from the loaded one, with their values.

    What the flush's scalar history says (`History.from_scalar_attribute`), read off
    the state's dicts directly: an attribute set to a value equal (by its column type)
    to the loaded one is no change.
    """
    values: dict[str, Any] = {}
    current = state.dict
    manager = state.manager
    for attr, original in state.committed_state.items():
        impl = manager[attr].impl
        if attr not in current or impl.collection or not impl.accepts_scalar_loader:
            history = impl.get_history(state, current)  # not loaded, or not a column
            if history.added or history.deleted:
                values[attr] = history.added[0] if history.added else None
            continue
        value = current[attr]
        if impl.is_equal(value, original) is not True:
            values[attr] = value
    return values


_ONUPDATES: dict[type[Any], tuple[tuple[str, Any], ...]] = {}


def _onupdates(model: type[Any]) -> tuple[tuple[str, Any], ...]:
    """(attribute, onupdate default) of a model's columns stamped on every UPDATE."""
    found = _ONUPDATES.get(model)
    if found is None:
        found = _ONUPDATES[model] = tuple(
            (prop.key, prop.columns[0].onupdate)
            for prop in inspect(model).column_attrs
            if prop.columns[0].onupdate is not None
        )
    return found


async def insert_rows(db: AsyncSession, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert `rows` (dicts of column values) into `table`; on SQLite, behind (module doc)."""
    if not rows:
        return
    connection = await db.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    plan = _plan(table, connection.dialect) if isinstance(driver, OneTripConnection) else None
    if plan is not None and isinstance(driver, OneTripConnection):
        driver.queue(plan[0], [_values(plan, row) for row in rows], True)
        return
    by_keys: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    if _complete(table):  # every row given every column: one executemany
        rows = [_full(table, row) for row in rows]
    for row in rows:
        by_keys.setdefault(tuple(row), []).append(row)
    with writes_behind(driver), db.no_autoflush:  # the session's changes are not ours
        for group in by_keys.values():
            await db.execute(table.insert(), group)


_BY_ID: dict[type[Any], bool] = {}


def _keyed_by_id(model: type[Any]) -> bool:
    found = _BY_ID.get(model)
    if found is None:
        found = _BY_ID[model] = [c.key for c in inspect(model).primary_key] == ["id"]
    return found


def attach_clean(session: Session, obj: Any, key: Any = None) -> None:
    """Attach `obj`, every column set, to `session` as persistent and clean.

    What `make_transient_to_detached` then `Session.add` do, as the ORM's loader does
    it for a row (a quarter of their cost): the identity key given or made from `id`,
    every value committed, the state put in the identity map. The models declare no
    relationships, so nothing cascades. It uses SQLAlchemy's own state calls
    (`InstanceState._commit_all`, `Session._update_impl`: the versions pyproject.toml
    allows; `tests/zapd/kernel/test_txsql.py` holds the result to a query's).
    """
    model = type(obj)
    if key is None:
        if not _keyed_by_id(model):
            raise ValueError(f"{model.__name__}: not keyed by id alone")
        key = (model, (obj.id,), None)
    state = instance_state(obj)
    if state.key is not None or state.session_id is not None:
        raise ValueError("attach_clean takes a transient object")
    state.key = key
    state._commit_all(state.dict)
    session._update_impl(state)


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
        objects, rows = self._objects, self._rows
        self._objects, self._rows = {}, {}
        for client in objects.get(Client, ()):
            # What `zapd.db.search`'s after_insert listener adds when a flush inserts one.
            for term in sorted(terms_of(client.name, client.profile_name)):
                rows.setdefault(ClientTerm, []).append(
                    {"client_id": client.id, "company_id": client.company_id, "term": term}
                )
        models = sorted(set(objects) | set(rows), key=lambda m: order[m.__table__.name])
        for model in models:
            batch = [
                {key: obj.__dict__.get(attr) for attr, key, _ in _columns(model)}
                for obj in objects.get(model, ())
            ]
            await insert_rows(db, model.__table__, batch + rows.get(model, []))
        for model in models:
            for obj in objects.get(model, ()):
                attach_clean(db.sync_session, obj)
