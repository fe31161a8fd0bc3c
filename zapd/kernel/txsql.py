"""Statements of a transaction run on its driver connection, past SQLAlchemy's layers.

The inbound batch runs a dozen fixed statements per transaction (what is pending, which
messages exist, the senders' identities, clients, open tickets and chats, the company;
the PROCESSED mark and the counters). Through `AsyncSession.execute` each paid the
ORM's compile state, the execution context, the greenlet bridge and, for entities, the
loader: several times SQLite's own work, on the event loop's thread, which bounds the
pipeline. `TxStatement` compiles a Core statement once per dialect and runs it on the
session's own driver connection (`zapd.db.sqlite_driver.OneTripConnection`: one trip
to its thread, in the session's transaction; on PostgreSQL the asyncpg connection).

Invariants:
- What a caller gets is what SQLAlchemy would give for the same statement: SQL compiled
  by the engine's dialect, every parameter through its column type's bind processor
  (`zapd.kernel.held.bind_processor`), every value through its result processor;
  expanding IN parameters take a list (one placeholder per element, as SQLAlchemy
  renders them); an UPDATE stamps its `onupdate` columns as SQLAlchemy would.
- Values are converted by SQLAlchemy's result processors, except three of equal result
  and less cost (`result_processor`): a `Uuid` and an `IntEnumType` value are memoised
  (immutable results; the memo is bounded), and on SQLite a `UTCDateTime` is parsed
  by `datetime.fromisoformat` (SQLAlchemy's own parser for any text it refuses). A test
  holds them equal to SQLAlchemy's.
- Entities come back as ORM objects in the session's identity map, persistent and
  clean, exactly as a query would leave them: an object the session already holds is
  returned as it is (not overwritten: the ORM's default), a new one is attached with
  every column loaded. A NULL primary key (outer join) gives None.
- No autoflush runs first: call it only where the session has nothing pending that
  the statement should see (the batch's reads come before anything it writes, its
  writes after an explicit flush).
- On PostgreSQL (asyncpg) the same holds on the transaction's asyncpg connection
  (`zapd.kernel.pgtx`: errors raised as SQLAlchemy raises them), with each expanding
  IN list sent as one array (`= ANY($n::type[])`, `_with_arrays`): one statement text
  whatever the lists' lengths, prepared once per connection, and an empty list
  needs no detour. `rows_all` sends its reads as one statement (one round trip,
  `_pg_rows_all`), each read's rows decoded exactly as its own statement's.
- Any other driver, and on SQLite an empty IN list, go through `AsyncSession.execute`
  unchanged.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Delete, Enum, Select, String, Update, Uuid, all_, any_, bindparam, inspect
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.sql import operators, visitors
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, Tuple

from zapd.db.sqlite_driver import OneTripConnection, writes_behind
from zapd.db.types import IntEnumType, UTCDateTime
from zapd.kernel.held import attach_clean, bind_processor
from zapd.kernel.hot import PerDialect
from zapd.kernel.pgtx import PgTx
from zapd.kernel.pgtx import connection as pg_connection

_DRIVER = "zap_txsql_driver"  # db.info: the transaction's driver connection (or None)
_DIALECT = "zap_txsql_dialect"  # db.info: the session's dialect
_TOKEN = re.compile(r"__\[POSTCOMPILE_(\w+)\]")

_Processor = Callable[[Any], Any] | None
MEMO_LIMIT = 50_000  # values a memoised processor keeps before it starts afresh


def result_processor(type_: Any, dialect: Dialect) -> _Processor:
    """The function that turns what the driver gives into a value of `type_`.

    SQLAlchemy's own, but a `Uuid` (a UUID from its text: ~1.7 µs) and an
    `IntEnumType` are memoised per type and dialect: ids and states repeat from batch to
    batch, and both results are immutable. On SQLite a `UTCDateTime` is read with
    `datetime.fromisoformat` (the text SQLAlchemy writes, `YYYY-MM-DD HH:MM:SS[.ffffff]`),
    falling back to SQLAlchemy's chain for any other text.
    """
    impl = type_.dialect_impl(dialect)
    found: _Processor = impl.result_processor(dialect, None)
    if found is None:
        return None
    if isinstance(type_, UTCDateTime) and dialect.name == "sqlite":
        return _sqlite_utc_result(found)
    if isinstance(type_, Uuid | IntEnumType):
        return _memoised(found)
    return found


def _memoised(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    memo: dict[Any, Any] = {}

    def memoised(value: Any) -> Any:
        if value is None:
            return None
        out = memo.get(value)
        if out is None:
            if len(memo) >= MEMO_LIMIT:
                memo.clear()
            out = memo[value] = process(value)
        return out

    return memoised


def _sqlite_utc_result(slow: Callable[[Any], Any]) -> Callable[[Any], Any]:
    parse = datetime.fromisoformat

    def process(value: Any) -> datetime | None:
        if value is None:
            return None
        if type(value) is str and len(value) in (19, 26) and value[10] == " ":
            try:
                # Parsed aware (UTC itself: `fromisoformat` gives `timezone.utc` for a
                # zero offset) at a tenth of the cost of `.replace(tzinfo=UTC)` after.
                return parse(value + "+00:00")
            except ValueError:
                pass
        out: datetime | None = slow(value)
        return out

    return process


class _Param(NamedTuple):
    name: str
    expanding: bool
    required: bool
    value: Any  # the bound value when not required
    process: _Processor
    stamp: Any = None  # a column default SQLAlchemy computes per execution (onupdate)


class _Entity(NamedTuple):
    model: type[Any]
    start: int  # its first column in the row
    attrs: tuple[str, ...]  # attribute per column, in column order
    pk: int  # the primary key's column, from `start`
    processors: tuple[_Processor, ...]  # its columns' result processors
    manager: Any  # its ClassManager (makes instances with their state)


class _Plan(NamedTuple):
    parts: tuple[str, ...]  # SQL text around the expanding parameters
    expanding: tuple[str, ...]  # the expanding parameter between each two parts
    params: tuple[_Param, ...]  # in placeholder order
    processors: tuple[_Processor, ...]  # per result column
    entities: tuple[_Entity, ...]

    def bind(self, values: Mapping[str, Any]) -> tuple[str, list[Any]] | None:
        """The SQL and its arguments; None when an expanding list is empty."""
        args: list[Any] = []
        counts: dict[str, int] = {}
        for p in self.params:
            if p.stamp is not None:
                stamped = p.stamp.arg(None) if p.stamp.is_callable else p.stamp.arg
                args.append(stamped if p.process is None else p.process(stamped))
                continue
            if p.expanding:
                items = values[p.name]
                if not items:
                    return None
                counts[p.name] = len(items)
                args.extend(items if p.process is None else [p.process(v) for v in items])
                continue
            value = values[p.name] if p.required else values.get(p.name, p.value)
            args.append(value if p.process is None else p.process(value))
        if not self.expanding:
            return self.parts[0], args
        sql = [self.parts[0]]
        for name, part in zip(self.expanding, self.parts[1:], strict=True):
            sql.append(", ".join("?" * counts[name]))
            sql.append(part)
        return "".join(sql), args


class TxStatement(PerDialect[_Plan]):
    """A Core statement (SELECT of columns or entities, UPDATE, DELETE), compiled once."""

    def __init__(self, stmt: Select[*tuple[Any, ...]] | Update | Delete) -> None:
        super().__init__()
        self.stmt = stmt
        self._entities: tuple[type[Any], ...] = ()
        if isinstance(stmt, Select):
            descriptions = stmt.column_descriptions
            entities = [d["entity"] for d in descriptions]
            if all(d["expr"] is d["entity"] for d in descriptions):  # whole entities
                self._entities = tuple(entities)

    def _compile(self, dialect: Dialect) -> _Plan:
        stmt = _with_arrays(self.stmt) if dialect.name == "postgresql" else self.stmt
        compiled = stmt.compile(dialect=dialect)
        # Columns SQLAlchemy stamps per execution (an UPDATE's onupdate, an INSERT's
        # default): their placeholders are named by the column's key.
        stamps = {c.key: c.onupdate for c in compiled.update_prefetch} | {
            c.key: c.default for c in compiled.insert_prefetch
        }
        params = []
        for name in compiled.positiontup or []:
            b = compiled.binds[name]
            process = bind_processor(b.type, dialect)
            params.append(
                _Param(name, b.expanding, b.required, b.effective_value, process, stamps.get(name))
            )
        pieces = _TOKEN.split(compiled.string)
        parts, expanding = tuple(pieces[0::2]), tuple(pieces[1::2])
        processors: tuple[_Processor, ...] = ()
        entities: list[_Entity] = []
        if not isinstance(self.stmt, Select):
            # An UPDATE's or DELETE's RETURNING: its result columns' types, as the
            # compiled statement gives them to SQLAlchemy's own result (what the
            # statement object memoized may predate its `.returning()`).
            processors = tuple(
                result_processor(entry[3], dialect) for entry in compiled._result_columns
            )
        if isinstance(self.stmt, Select):
            columns = list(self.stmt.selected_columns)
            processors = tuple(result_processor(c.type, dialect) for c in columns)
            start = 0
            for model in self._entities:
                mapper = inspect(model)
                by_column = {prop.columns[0].key: prop.key for prop in mapper.column_attrs}
                keys = [c.key for c in model.__table__.columns]
                table_columns = columns[start : start + len(keys)]
                if [c.key for c in table_columns] != keys:
                    raise ValueError(f"{model.__name__}: columns not in table order")
                pk = keys.index(mapper.primary_key[0].key)
                entities.append(
                    _Entity(
                        model,
                        start,
                        tuple(by_column[k] for k in keys),
                        pk,
                        processors[start : start + len(keys)],
                        mapper.class_manager,
                    )
                )
                start += len(keys)
        return _Plan(parts, expanding, tuple(params), processors, tuple(entities))

    async def rows(self, db: AsyncSession, values: Mapping[str, Any]) -> list[Any]:
        """Run a SELECT: its rows as tuples, or (one entity) its objects, or tuples of them.

        Also an UPDATE or DELETE with RETURNING: its rows as tuples.
        """
        driver = await _driver(db)
        if driver is None:
            pg = await pg_connection(db)
            if pg is not None:
                return self._decode(db, await pg.fetch(*self._pg_bound(db, values)))
        bound = None if driver is None else self.plan(_dialect(db)).bind(values)
        if driver is None or bound is None:
            result = await db.execute(self.stmt, dict(values))
            if len(self._entities) == 1:
                return list(result.scalars().all())
            return [tuple(r) for r in result.all()]
        cursor = await driver.execute(*bound)
        return self._decode(db, await cursor.fetchall())

    def _pg_bound(self, db: AsyncSession, values: Mapping[str, Any]) -> tuple[str, list[Any]]:
        """PostgreSQL: the SQL and its arguments (lists go as one array each: never None)."""
        bound = self.plan(_dialect(db)).bind(values)
        if bound is None:
            raise RuntimeError("an expanding list left in a PostgreSQL plan")
        return bound

    def _decode(self, db: AsyncSession, raw: list[Any]) -> list[Any]:
        """The driver's rows as `rows` returns them."""
        plan = self.plan(_dialect(db))
        if not plan.entities:
            return [tuple(_processed(plan.processors, r, 0, len(r))) for r in raw]
        # A row's entity already built (a company repeated on each department's row) or
        # held by the session is reused before its columns are converted.
        seen: dict[Any, Any] = {}
        out = [tuple(_entity(db, e, r, seen) for e in plan.entities) for r in raw]
        return [r[0] for r in out] if len(plan.entities) == 1 else out

    async def run(
        self, db: AsyncSession, values: Mapping[str, Any], *, behind: bool = False
    ) -> None:
        """Run an UPDATE or DELETE; `behind`: it may wait for the next trip (no answer read)."""
        driver = await _driver(db)
        if driver is None:
            pg = await pg_connection(db)
            if pg is not None:
                await pg.execute(*self._pg_bound(db, values))
                return
        bound = None if driver is None else self.plan(_dialect(db)).bind(values)
        if driver is None or bound is None:
            if behind:
                raw = (await (await db.connection()).get_raw_connection()).driver_connection
                with writes_behind(raw):
                    await db.execute(self.stmt, dict(values))
            else:
                await db.execute(self.stmt, dict(values))
            return
        if behind:
            driver.queue(bound[0], bound[1], False)
        else:
            await driver.execute(*bound)


async def rows_all(
    db: AsyncSession, queries: Sequence[tuple[TxStatement, Mapping[str, Any]]]
) -> list[list[Any]]:
    """Run independent SELECTs, each answered as `TxStatement.rows`; on SQLite in one trip.

    They run in the given order in the transaction (a later one sees nothing the earlier
    ones did not: they only read). One with an empty IN list, and any other driver's,
    go through the session one by one.
    """
    driver = await _driver(db)
    if driver is None:
        pg = await pg_connection(db)
        if pg is not None and len(queries) > 1:
            return await _pg_rows_all(db, pg, queries)
        return [await q.rows(db, values) for q, values in queries]
    dialect = _dialect(db)
    bound = [q.plan(dialect).bind(values) for q, values in queries]
    raw = iter(await driver.run_all([b for b in bound if b is not None]))
    out = []
    for (q, values), b in zip(queries, bound, strict=True):
        out.append(await q.rows(db, values) if b is None else q._decode(db, next(raw)))
    return out


# PostgreSQL: the one statement of each sequence of reads (`_pg_rows_all`).
_TOGETHER: dict[tuple[TxStatement, ...], str] = {}
_PLACEHOLDER = re.compile(r"\$(\d+)")


async def _pg_rows_all(
    db: AsyncSession, pg: PgTx, queries: Sequence[tuple[TxStatement, Mapping[str, Any]]]
) -> list[list[Any]]:
    """PostgreSQL: `rows_all`'s reads as one statement, one round trip.

    `SELECT ARRAY(SELECT q FROM (<read 1>) AS q), ARRAY(..)`: one row, one array of
    row values per read (asyncpg decodes each field with its type's codec, as for a
    plain row), numbered on from the previous read's parameters. One snapshot serves
    them all (they only read). The text depends on which statements are read: one
    prepared statement per sequence.
    """
    key = tuple(q for q, _ in queries)
    bound = [q._pg_bound(db, values) for q, values in queries]
    sql = _TOGETHER.get(key)
    if sql is None:
        parts = []
        offset = 0
        for text, args in bound:
            renumbered = _PLACEHOLDER.sub(functools.partial(_renumber, offset), text)
            parts.append(f"ARRAY(SELECT q FROM ({renumbered}) AS q)")  # noqa: S608
            offset += len(args)
        sql = _TOGETHER[key] = "SELECT " + ", ".join(parts)
    args = [a for _, each in bound for a in each]
    (row,) = await pg.fetch(sql, args)
    return [q._decode(db, list(row[i])) for i, (q, _) in enumerate(queries)]


def _renumber(offset: int, placeholder: re.Match[str]) -> str:
    return f"${int(placeholder.group(1)) + offset}"


def _with_arrays(stmt: Any) -> Any:
    """PostgreSQL: `stmt` with each expanding IN list as `= ANY($n::type[])` (NOT IN:
    `!= ALL(..)`), one array parameter of the same name: the text no longer depends on
    the lists' lengths (one prepared statement), and an empty list matches nothing
    (NOT IN: everything), as SQLAlchemy's empty IN does. Strings go as VARCHAR[] with
    no length, as SQLAlchemy casts a string parameter (nothing is cut)."""

    def replace(element: Any, **_: Any) -> Any:
        if (
            isinstance(element, BinaryExpression)
            and element.operator in (operators.in_op, operators.not_in_op)
            and isinstance(element.right, BindParameter)
            and element.right.expanding
        ):
            if isinstance(element.left, Tuple):
                raise ValueError("a tuple IN list has no PostgreSQL array form here")
            item = element.left.type
            if isinstance(item, String) and not isinstance(item, Enum):
                item = String()
            array = bindparam(element.right.key, type_=ARRAY(item))
            if element.operator is operators.in_op:
                return element.left == any_(array)
            return element.left != all_(array)
        return None

    return visitors.replacement_traverse(cast(visitors.ExternallyTraversible, stmt), {}, replace)


def _processed(
    processors: Sequence[_Processor], row: Sequence[Any], start: int, end: int
) -> list[Any]:
    """`row[start:end]` with each value through its column's result processor."""
    values = list(row[start:end])
    for i, p in enumerate(processors):
        if p is not None:
            values[i] = p(values[i])
    return values


def _entity(db: AsyncSession, entity: _Entity, row: Sequence[Any], seen: dict[Any, Any]) -> Any:
    """The persistent object of `row`'s columns for `entity` (the session's, if it has one)."""
    raw_pk = row[entity.start + entity.pk]
    if raw_pk is None:
        return None
    found = seen.get((entity.model, raw_pk))
    if found is not None:
        return found
    process = entity.processors[entity.pk]
    pk = raw_pk if process is None else process(raw_pk)
    session = db.sync_session
    key = (entity.model, (pk,), None)
    obj = session.identity_map.get(key)
    if obj is None:
        values = _processed(entity.processors, row, entity.start, entity.start + len(entity.attrs))
        obj = entity.manager.new_instance()
        instance_state(obj).dict.update(zip(entity.attrs, values, strict=True))
        attach_clean(session, obj, key)  # as a query's loader leaves it
    seen[(entity.model, raw_pk)] = obj
    return obj


def _dialect(db: AsyncSession) -> Dialect:
    found: Dialect | None = db.info.get(_DIALECT)
    if found is None:
        found = db.info[_DIALECT] = db.sync_session.get_bind().dialect
    return found


async def _driver(db: AsyncSession) -> OneTripConnection | None:
    """The transaction's SQLite driver connection (None for any other driver)."""
    if _DRIVER in db.info:
        found: OneTripConnection | None = db.info[_DRIVER]
        return found
    connection = await db.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    found = raw if isinstance(raw, OneTripConnection) else None
    db.info[_DRIVER] = found
    return found
