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
  in (no Python default) goes through SQLAlchemy instead.
- On PostgreSQL `insert` is one statement, whatever the tables: `WITH t0 AS (INSERT
  INTO parent .. SELECT * FROM unnest($1::uuid[], ..)), .. INSERT INTO child ..`, one
  array parameter per column (the text depends on the set of tables only: one
  prepared statement per set), each value converted by the column type's bind
  processor as SQLAlchemy would (strings go as text[], so the column's length check
  still refuses a value too long). Foreign keys are checked at the statement's end:
  a child goes in beside its parent. Statements held with `also` (plain UPDATEs of
  the same transaction) join it after the inserts; they see the database as it was
  before the statement, not the rows inserted beside them. Any violation fails the
  whole statement, as a failing executemany failed the transaction. It runs on the
  transaction's asyncpg connection (`zapd.kernel.pgtx`). Elsewhere (not
  SQLite, not PostgreSQL): one Core executemany per table and set of columns, then
  the `also` statements.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from sqlalchemy import Enum, String, Table, bindparam, inspect
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import InstanceState, Session
from sqlalchemy.orm.attributes import instance_state

from zapd.db.models import Base, Client, ClientTerm
from zapd.db.search import terms_of
from zapd.db.sqlite_driver import OneTripConnection, writes_behind
from zapd.db.types import IntEnumType, UTCDateTime
from zapd.kernel.pgtx import PgTx
from zapd.kernel.pgtx import connection as pg_connection


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


async def write_changes(
    db: AsyncSession, models: tuple[type[Any], ...], held: Held | None = None
) -> None:
    """Queue the changes of the session's objects of `models` (module docstring).

    With `held` (PostgreSQL), they join its insert's one statement instead.
    """
    driver: Any = None
    if held is None:  # with a holder, nothing here needs the connection
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
        if held is not None:
            held.update(model.__table__, tuple(names[a] for a in keys), rows)
        elif isinstance(driver, OneTripConnection):
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


# PostgreSQL: the one statement inserting rows into a set of tables, and per table its
# columns (key, default, bind processor), in the order of the statement's arrays.
_Columns = tuple[tuple[str, Any, Callable[[Any], Any] | None], ...]
_ONE_STATEMENT: dict[tuple[str, ...], tuple[str, tuple[_Columns, ...]]] = {}
# PostgreSQL: a statement held with the rows (`Held.also`), compiled: its text and per
# placeholder (parameter name, bind processor).
_COMPILED: dict[Any, tuple[str, _Columns]] = {}
_PLACEHOLDER = re.compile(r"\$(\d+)")


def _array_type(column: Any, dialect: Dialect) -> str:
    """The SQL type of an array of `column`'s values (strings as text: the column's own
    length check, on assignment, then refuses a value too long as a plain INSERT would;
    an explicit cast to VARCHAR(n) would cut it instead)."""
    if isinstance(column.type, String) and not isinstance(column.type, Enum):
        return "TEXT[]"
    return f"{column.type.compile(dialect=dialect)}[]"


def _inserts(tables: tuple[Table, ...], dialect: Dialect) -> tuple[str, tuple[_Columns, ...]]:
    """Per table `INSERT INTO t (..) SELECT * FROM unnest($1::..[], ..)`, joined by ", ".

    One array parameter per column: the text depends on the set of tables only, so the
    driver's prepared statement serves every batch with that set.
    """
    key = tuple(t.name for t in tables)
    found = _ONE_STATEMENT.get(key)
    if found is not None:
        return found
    quote = dialect.identifier_preparer
    inserts: list[str] = []
    plans = []
    n = 0
    for table in tables:
        columns = list(table.columns)
        arrays = ", ".join(
            f"${n + i + 1}::{_array_type(c, dialect)}" for i, c in enumerate(columns)
        )
        n += len(columns)
        names = ", ".join(quote.quote(c.name) for c in columns)
        target = f"{quote.format_table(table)} ({names})"  # the metadata's names, quoted
        inserts.append(f"INSERT INTO {target} SELECT * FROM unnest({arrays})")  # noqa: S608
        plans.append(tuple((c.key, c.default, bind_processor(c.type, dialect)) for c in columns))
    found = _ONE_STATEMENT[key] = ("\x00".join(inserts), tuple(plans))
    return found


_UPDATES_FROM: dict[tuple[str, tuple[str, ...]], tuple[str, _Columns]] = {}


def _update_from(table: Table, keys: tuple[str, ...], dialect: Dialect) -> tuple[str, _Columns]:
    """`UPDATE t SET k = v.k, .. FROM unnest($1::uuid[], ..) AS v(held_pk, k, ..) WHERE
    t.id = v.held_pk AND t.id = ANY($1)`, numbered from $1, and its columns (`_PK` first).

    The `ANY($1)` says the same as the join, in a form the planner answers with the
    primary key's index whatever its statistics: on the join alone (unnest guessed at
    100 rows, a young table with none) it chose a sequential scan and a hash join, a
    cost that grew with the table on every batch.
    """
    found = _UPDATES_FROM.get((table.name, keys))
    if found is None:
        quote = dialect.identifier_preparer
        columns = [table.c.id, *(table.c[k] for k in keys)]
        arrays = ", ".join(f"${i + 1}::{_array_type(c, dialect)}" for i, c in enumerate(columns))
        names = [_PK, *(quote.quote(c.name) for c in columns[1:])]
        sets = ", ".join(f"{n} = v.{n}" for n in names[1:])
        target = quote.format_table(table)
        pk = f"{target}.{quote.quote(table.c.id.name)}"
        sql = (
            f"UPDATE {target} SET {sets} FROM unnest({arrays}) AS v({', '.join(names)})"  # noqa: S608
            f" WHERE {pk} = v.{_PK} AND {pk} = ANY($1::{_array_type(columns[0], dialect)})"
        )
        plan = tuple(
            (key, None, bind_processor(c.type, dialect))
            for key, c in zip((_PK, *keys), columns, strict=True)
        )
        found = _UPDATES_FROM[(table.name, keys)] = (sql, plan)
    return found


def _compiled(statement: Any, dialect: Dialect) -> tuple[str, _Columns]:
    """`statement`'s text and, per placeholder, (name, fallback, bind processor).

    The fallback gives the value when the parameters lack it: the column's default
    (`onupdate` for an UPDATE) for a column the execution would stamp, as
    SQLAlchemy's prefetch does, else the bound value the statement carries.
    """
    found = _COMPILED.get(statement)
    if found is None:
        compiled = statement.compile(dialect=dialect)
        stamped = {c.key: c.onupdate for c in compiled.update_prefetch}
        stamped |= {c.key: c.default for c in compiled.insert_prefetch}
        plan = []
        for name in compiled.positiontup or []:
            bind = compiled.binds[name]
            default = stamped.get(name)
            fallback = (
                functools.partial(_default, default)
                if default is not None
                else functools.partial(getattr, bind, "effective_value")
            )
            plan.append((name, fallback, bind_processor(bind.type, dialect)))
        found = _COMPILED[statement] = (compiled.string, tuple(plan))
    return found


def _default(default: Any) -> Any:
    return default.arg(None) if default.is_callable else default.arg


def _arrays(
    tables: list[tuple[Table, list[dict[str, Any]]]], plans: tuple[_Columns, ...]
) -> list[Any]:
    """Per table and column (`_inserts`'s order), the array of the rows' converted values."""
    args: list[Any] = []
    for (_, rows), plan in zip(tables, plans, strict=True):
        converted = [_values(("", plan), row) for row in rows]  # row by row, as executemany
        columns = list(zip(*converted, strict=True)) if converted else [() for _ in plan]
        args.extend(list(column) for column in columns)
    return args


def _renumber(offset: int, placeholder: re.Match[str]) -> str:
    return f"${int(placeholder.group(1)) + offset}"


async def _insert_in_one_statement(
    db: AsyncSession,
    connection: AsyncConnection | None,
    tables: list[tuple[Table, list[dict[str, Any]]]],
    also: list[tuple[Any, dict[str, Any]]],
    updates: list[tuple[Table, tuple[str, ...], list[dict[str, Any]]]],
    pg: PgTx | None = None,
) -> None:
    """PostgreSQL: insert the rows of every table, then `updates` and `also`, as one statement.

    `WITH t0 AS (INSERT ..), t1 AS (..) <the last one>`: its foreign keys are checked at
    the statement's end, so a child may go in beside its parent; a unique or
    foreign-key violation fails the statement as a whole.
    """
    tables = [(table, rows) for table, rows in tables if rows]
    if not tables and not also and not updates:
        return
    dialect = db.sync_session.get_bind().dialect
    text, plans = _inserts(tuple(table for table, _ in tables), dialect)
    parts = text.split("\x00") if tables else []
    # One statement changes a row once: a second change of it would be lost. Held
    # updates name their rows (`write_changes` holds each object's changes once);
    # an `also` statement may change any row of its table.
    rows_updated = [(table.name, row[_PK]) for table, _, rows in updates for row in rows]
    tables_updated = {table.name for table, _, _ in updates}
    also_tables = [statement.table.name for statement, _ in also]
    if (
        len(set(rows_updated)) < len(rows_updated)
        or len(set(also_tables)) < len(also_tables)
        or tables_updated & set(also_tables)
    ):
        raise RuntimeError("a row could be changed twice in one statement")
    args = _arrays(tables, plans)
    for table, keys, rows in updates:
        sql, plan = _update_from(table, keys, dialect)
        parts.append(_PLACEHOLDER.sub(functools.partial(_renumber, len(args)), sql))
        args += _arrays([(table, rows)], (plan,))
    for statement, params in also:
        sql, binds = _compiled(statement, dialect)
        parts.append(_PLACEHOLDER.sub(functools.partial(_renumber, len(args)), sql))
        for name, fallback, process in binds:
            value = params[name] if name in params else fallback()
            args.append(value if process is None else process(value))
    ctes = [f"t{i} AS ({sql})" for i, sql in enumerate(parts[:-1])]
    sql = (f"WITH {', '.join(ctes)} " if ctes else "") + parts[-1]
    if pg is not None:  # the transaction's asyncpg connection, past SQLAlchemy
        await pg.execute(sql, args)
    elif connection is not None:
        await connection.exec_driver_sql(sql, tuple(args))


_UNDER: dict[tuple[str, str], str] = {}


async def insert_under(
    connection: AsyncConnection,
    table: Table,
    rows: list[dict[str, Any]],
    parent: Table,
    parent_id: Any,
) -> bool:
    """PostgreSQL: insert `rows` with one statement only while `parent`'s row lives.

    `INSERT INTO table .. SELECT * FROM unnest(..) WHERE EXISTS (SELECT FROM parent
    WHERE id = $n FOR KEY SHARE)`: the parent row is held before any row goes in (a
    delete of it, which locks it FOR UPDATE first, waits or is waited for), and when it
    is gone nothing is inserted and False is returned. Values are converted as `insert`
    converts them. Outside a transaction the statement commits by itself.
    """
    if not rows:
        return True
    dialect = connection.dialect
    key = (table.name, parent.name)
    sql = _UNDER.get(key)
    text, (plan,) = _inserts((table,), dialect)
    if sql is None:
        quote = dialect.identifier_preparer
        guard = (
            f"SELECT FROM {quote.format_table(parent)} WHERE {quote.quote(parent.c.id.name)}"
            f" = ${len(plan) + 1}::{parent.c.id.type.compile(dialect=dialect)} FOR KEY SHARE"
        )
        sql = _UNDER[key] = f"{text} WHERE EXISTS ({guard})"
    args = _arrays([(table, rows)], (plan,))
    id_process = bind_processor(parent.c.id.type, dialect)
    args.append(parent_id if id_process is None else id_process(parent_id))
    result = await connection.exec_driver_sql(sql, tuple(args))
    return bool(result.rowcount)


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
        self._also: list[tuple[Any, dict[str, Any]]] = []
        self._updates: list[tuple[Table, tuple[str, ...], list[dict[str, Any]]]] = []

    def __bool__(self) -> bool:
        return bool(self._objects or self._rows or self._also or self._updates)

    def add(self, obj: Any) -> Any:
        """Hold a new ORM object (not in the session); return it."""
        fill_defaults(obj)
        self._objects.setdefault(type(obj), []).append(obj)
        return obj

    def add_row(self, model: type[Any], row: dict[str, Any]) -> None:
        """Hold a raw row of `model`'s table (every column it needs, defaults included)."""
        self._rows.setdefault(model, []).append(row)

    def also(self, statement: Any, params: dict[str, Any]) -> None:
        """Run `statement` (no result read; no expanding parameters) with the insert, after it.

        On PostgreSQL it joins the insert's one statement (module docstring): it sees
        the database as the statement began, not the rows inserted beside it, and no
        other held update may touch its table (a row changes once per statement).
        """
        self._also.append((statement, params))

    def update(self, table: Table, keys: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
        """PostgreSQL: set columns `keys` of existing rows (dicts of them and `_PK`, the id).

        They join the insert's one statement (`write_changes` with a holder).
        """
        self._updates.append((table, keys, rows))

    async def insert(self, db: AsyncSession) -> None:
        """Insert every held row, parents first; attach the held objects to `db`."""
        if not self:
            return
        order = _table_order()
        objects, rows, also, updates = self._objects, self._rows, self._also, self._updates
        self._objects, self._rows, self._also, self._updates = {}, {}, [], []
        for client in objects.get(Client, ()):
            # What `zapd.db.search`'s after_insert listener adds when a flush inserts one.
            for term in sorted(terms_of(client.name, client.profile_name)):
                rows.setdefault(ClientTerm, []).append(
                    {"client_id": client.id, "company_id": client.company_id, "term": term}
                )
        models = sorted(set(objects) | set(rows), key=lambda m: order[m.__table__.name])
        tables: list[tuple[Table, list[dict[str, Any]]]] = []
        for model in models:
            batch = [
                {key: obj.__dict__.get(attr) for attr, key, _ in _columns(model)}
                for obj in objects.get(model, ())
            ]
            tables.append((model.__table__, batch + rows.get(model, [])))
        if db.sync_session.get_bind().dialect.name == "postgresql":
            pg = await pg_connection(db)  # the transaction's asyncpg connection (cached)
            connection = None if pg is not None else await db.connection()
            await _insert_in_one_statement(db, connection, tables, also, updates, pg)
        else:
            if updates:
                raise RuntimeError("held updates are PostgreSQL's (write_changes)")
            for table, table_rows in tables:
                await insert_rows(db, table, table_rows)
            for statement, params in also:
                await db.execute(statement, params)
        for model in models:
            for obj in objects.get(model, ()):
                attach_clean(db.sync_session, obj)
