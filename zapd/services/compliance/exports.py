"""Bulk exports read straight from the database, streamed in chunks with flat memory.

Used by `zapctl export ...` (offline: the command opens the database itself). Every
kind is one SELECT over the main table plus lookups (joins, correlated counts) that
each cost one index probe per row, so an export of N rows costs O(N):

- PostgreSQL: one statement read through a server-side cursor
  (`execution_options(yield_per=N)` on asyncpg), `chunk` rows at a time.
- SQLite: keyset pagination on the main table's id (`id > last ORDER BY id LIMIT
  chunk`), all chunks inside one read transaction, so under WAL the export sees one
  consistent snapshot and never blocks zapd's writers.

Rows come out as tuples of plain values: UUIDs as strings, enums as lower-case
names, times as aware UTC datetimes, JSON columns as dicts. `COLUMNS[kind]` names
them, in order. Filters: the company, a department, and a [since, until) range over
each kind's creation time.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeAlias

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    DateTime,
    Integer,
    Select,
    String,
    Uuid,
    and_,
    exists,
    func,
    select,
    type_coerce,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql import operators
from sqlalchemy.sql.expression import UnaryExpression

from shared.enums import TicketStatus
from shared.errors import ErrorCode
from zapd.db.models import (
    AuditLog,
    Category,
    Chat,
    Client,
    Department,
    Media,
    Message,
    Ticket,
    User,
    WaSession,
)
from zapd.db.types import IntEnumType, UTCDateTime
from zapd.errors import BadRequest, NotFound
from zapd.kernel.principal import CLI_PRINCIPAL

if TYPE_CHECKING:
    from shared.protocol.stats import MetricsSummary

DEFAULT_CHUNK = 1000
ROW_KINDS = ("conversations", "messages", "tickets", "audit")


@dataclass(frozen=True)
class Filters:
    """What an export is limited to (None: no limit)."""

    company_id: uuid.UUID | None = None
    department_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None


# --------------------------------------------------------------------------- lookups


def _as_uuid(ref: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(ref)
    except ValueError:
        return None


async def resolve_department(
    db: AsyncSession | AsyncConnection, company_id: uuid.UUID | None, ref: str
) -> Department:
    """Return the department named by id, slug or name (names need the company)."""
    ref = ref.strip()
    did = _as_uuid(ref)
    if did is not None:
        stmt = select(Department).where(Department.id == did)
        if company_id is not None:
            stmt = stmt.where(Department.company_id == company_id)
    else:
        if company_id is None:
            raise BadRequest(
                "a department name or slug needs --company (or give the department id)",
                code=ErrorCode.USAGE,
            )
        folded = ref.casefold()
        stmt = select(Department).where(
            Department.company_id == company_id,
            (func.lower(Department.slug) == folded) | (func.lower(Department.name) == folded),
        )
    row = (await db.execute(stmt)).scalars().first()
    if row is None:
        raise NotFound(f"department {ref} not found")
    return row


# --------------------------------------------------------------------------- values
#
# Rows are converted to text-ready values column by column, with converters chosen once
# per column from its type. The SELECT hands over raw driver values where the ORM types
# would build objects only to turn them back into text (UUIDs, enums, SQLite times):
# at a million rows that is most of an export's CPU time.


def iso(value: datetime) -> str:
    """Return an aware datetime as ISO 8601 in UTC with a `Z` suffix."""
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _uuid_text(value: Any) -> str:
    if type(value) is str and len(value) == 32:  # SQLite stores UUIDs as 32 hex digits
        return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"
    return str(value)


def _time_text(value: Any) -> str:
    if type(value) is str:  # SQLite: naive UTC "YYYY-MM-DD HH:MM:SS[.ffffff]"
        text = value.replace(" ", "T", 1)
        return (text if "." in text else text + ".000000") + "Z"
    return iso(value)


def _csv_bool(value: Any) -> str:
    return "true" if value else "false"


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _kind_of(column: Any) -> str:
    t = column.type
    if isinstance(t, IntEnumType):
        return "enum"
    if isinstance(t, Uuid):
        return "uuid"
    if isinstance(t, UTCDateTime):
        return "time"
    if isinstance(t, Boolean):
        return "bool"
    if isinstance(t, JSON) or isinstance(getattr(t, "impl", None), JSON):
        return "json"
    return "plain"


def _raw_column(column: Any, kind: str, dialect: str) -> Any:
    name = column.key
    if kind == "uuid":
        return type_coerce(column, String()).label(name)
    if kind == "enum":
        return type_coerce(column, Integer()).label(name)
    if kind == "time":
        if dialect == "sqlite":
            return type_coerce(column, String()).label(name)
        return type_coerce(column, DateTime(timezone=True)).label(name)
    return column


def converter(kind: str, *, csv: bool) -> Callable[[Sequence[Any]], list[Any]]:
    """Return a function turning one raw row of an export into plain values.

    UUIDs and times become strings (ISO 8601 UTC, `Z`), enums lower-case names; for CSV
    booleans become true/false and JSON columns JSON text (None stays None: the csv
    module writes it as an empty cell).
    """
    stmt, _ = statement(kind, Filters())
    steps: list[tuple[int, Callable[[Any], Any]]] = []
    for i, column in enumerate(stmt.selected_columns):
        ckind = _kind_of(column)
        if ckind == "uuid":
            steps.append((i, _uuid_text))
        elif ckind == "time":
            steps.append((i, _time_text))
        elif ckind == "enum":
            enum_type = column.type
            assert isinstance(enum_type, IntEnumType)
            names = {int(m): m.name.lower() for m in enum_type.enum_class}
            steps.append((i, names.__getitem__))
        elif ckind == "bool" and csv:
            steps.append((i, _csv_bool))
        elif ckind == "json" and csv:
            steps.append((i, _json_text))

    def convert(row: Sequence[Any]) -> list[Any]:
        out = list(row)
        for i, fn in steps:
            value = out[i]
            if value is not None:
                out[i] = fn(value)
        return out

    return convert


# --------------------------------------------------------------------------- statements


def _unindexed(column: Any) -> Any:
    """Return `+column`: the same value, which SQLite's planner may not serve from an index.

    On SQLite each chunk must walk the main table's id index from the last id seen; an
    index on a filtered column would make the planner gather every match and sort them
    again for each chunk (quadratic over a whole export).
    """
    return UnaryExpression(column, operator=operators.custom_op("+"), type_=column.type)


def _same(column: Any) -> Any:
    return column


Wrap = Callable[[Any], Any]
AnySelect: TypeAlias = "Select[*tuple[Any, ...]]"


def _range(column: Any, f: Filters) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if f.since is not None:
        out.append(column >= f.since)
    if f.until is not None:
        out.append(column < f.until)
    return out


def _messages(f: Filters, w: Wrap) -> AnySelect:
    author = aliased(User)
    stmt = (
        select(
            Message.id,
            Message.company_id,
            Message.created_at,
            Message.wa_timestamp,
            Message.session_id,
            Message.chat_id,
            Client.phone.label("client_phone"),
            Message.ticket_id,
            Ticket.number.label("ticket_number"),
            Ticket.department_id,
            Message.direction,
            Message.type,
            Message.status,
            Message.is_note,
            Message.author_id,
            author.email.label("author_email"),
            Message.body,
            Message.media_id,
            Media.mime.label("media_mime"),
            Media.filename.label("media_filename"),
            Media.size.label("media_size"),
            Message.wa_message_id,
            Message.quoted_message_id,
            Message.error,
        )
        .select_from(Message)
        .join(Chat, Chat.id == Message.chat_id)
        .outerjoin(Client, Client.id == Chat.client_id)
        .outerjoin(Ticket, Ticket.id == Message.ticket_id)
        .outerjoin(author, author.id == Message.author_id)
        .outerjoin(Media, Media.id == Message.media_id)
        .where(*_range(w(Message.created_at), f))
    )
    if f.company_id is not None:
        stmt = stmt.where(w(Message.company_id) == f.company_id)
    if f.department_id is not None:
        stmt = stmt.where(w(Ticket.department_id) == f.department_id)
    return stmt


def _tickets(f: Filters, w: Wrap) -> AnySelect:
    assignee = aliased(User)
    messages = (
        select(func.count())
        .where(Message.ticket_id == Ticket.id)
        .correlate(Ticket)
        .scalar_subquery()
        .label("message_count")
    )
    stmt = (
        select(
            Ticket.id,
            Ticket.number,
            Ticket.company_id,
            Ticket.status,
            Ticket.priority,
            Ticket.flow_state,
            Ticket.client_id,
            Client.phone.label("client_phone"),
            func.coalesce(Client.name, Client.profile_name).label("client_name"),
            Ticket.session_id,
            WaSession.name.label("session_name"),
            Ticket.department_id,
            Department.name.label("department_name"),
            Ticket.category_id,
            Category.name.label("category_name"),
            Ticket.assignee_id,
            assignee.email.label("assignee_email"),
            Ticket.created_at,
            Ticket.first_response_at,
            Ticket.last_message_at,
            Ticket.closed_at,
            Ticket.closed_by_id,
            Ticket.reopen_count,
            messages,
        )
        .select_from(Ticket)
        .outerjoin(Client, Client.id == Ticket.client_id)
        .outerjoin(WaSession, WaSession.id == Ticket.session_id)
        .outerjoin(Department, Department.id == Ticket.department_id)
        .outerjoin(Category, Category.id == Ticket.category_id)
        .outerjoin(assignee, assignee.id == Ticket.assignee_id)
        .where(*_range(w(Ticket.created_at), f))
    )
    if f.company_id is not None:  # served by the (company_id, id) index
        stmt = stmt.where(Ticket.company_id == f.company_id)
    if f.department_id is not None:
        stmt = stmt.where(w(Ticket.department_id) == f.department_id)
    return stmt


def _conversations(f: Filters, w: Wrap) -> AnySelect:
    def count_of(model: Any, label: str) -> Any:
        return (
            select(func.count())
            .where(model.chat_id == Chat.id)
            .correlate(Chat)
            .scalar_subquery()
            .label(label)
        )

    stmt = (
        select(
            Chat.id,
            Chat.company_id,
            Chat.session_id,
            WaSession.name.label("session_name"),
            Chat.wa_chat_id,
            Chat.type,
            Chat.name,
            Chat.client_id,
            Client.phone.label("client_phone"),
            func.coalesce(Client.name, Client.profile_name).label("client_name"),
            Chat.created_at,
            Chat.last_message_at,
            count_of(Message, "message_count"),
            (
                select(func.count())
                .where(Ticket.client_id == Chat.client_id, Ticket.session_id == Chat.session_id)
                .correlate(Chat)
                .scalar_subquery()
                .label("ticket_count")
            ),
            Chat.unread_count,
            Chat.archived,
        )
        .select_from(Chat)
        .outerjoin(WaSession, WaSession.id == Chat.session_id)
        .outerjoin(Client, Client.id == Chat.client_id)
        .where(*_range(w(Chat.created_at), f))
    )
    if f.company_id is not None:
        stmt = stmt.where(w(Chat.company_id) == f.company_id)
    if f.department_id is not None:
        # A conversation belongs to a department when one of its tickets did.
        stmt = stmt.where(
            exists().where(
                and_(
                    Ticket.client_id == Chat.client_id,
                    Ticket.session_id == Chat.session_id,
                    Ticket.department_id == f.department_id,
                )
            )
        )
    return stmt


def _audit(f: Filters, w: Wrap) -> AnySelect:
    stmt = (
        select(
            AuditLog.id,
            AuditLog.created_at,
            AuditLog.company_id,
            AuditLog.user_id,
            User.email.label("user_email"),
            AuditLog.api_token_id,
            AuditLog.action,
            AuditLog.entity_type,
            AuditLog.entity_id,
            AuditLog.ip,
            AuditLog.data,
        )
        .select_from(AuditLog)
        .outerjoin(User, User.id == AuditLog.user_id)
        .where(*_range(w(AuditLog.created_at), f))
    )
    if f.company_id is not None:
        stmt = stmt.where(AuditLog.company_id == f.company_id)
    return stmt


_BUILDERS: dict[str, tuple[Callable[[Filters, Wrap], AnySelect], Any]] = {
    "messages": (_messages, Message.id),
    "tickets": (_tickets, Ticket.id),
    "conversations": (_conversations, Chat.id),
    "audit": (_audit, AuditLog.id),
}


def statement(kind: str, f: Filters, dialect: str = "postgresql") -> tuple[AnySelect, Any]:
    """Return the SELECT of one export kind and its ordering key (the main table's id)."""
    try:
        build, key = _BUILDERS[kind]
    except KeyError:
        raise BadRequest(f"unknown export {kind!r}", code=ErrorCode.USAGE) from None
    if kind == "audit" and f.department_id is not None:
        raise BadRequest("--dept does not apply to the audit export", code=ErrorCode.USAGE)
    return build(f, _unindexed if dialect == "sqlite" else _same), key


def columns(kind: str) -> list[str]:
    """Return the column names of one export kind, in order."""
    stmt, _ = statement(kind, Filters())
    return [str(c.key) for c in stmt.selected_columns]


COLUMNS: dict[str, list[str]] = {kind: columns(kind) for kind in ROW_KINDS}


async def count(conn: AsyncConnection, kind: str, f: Filters) -> int:
    """Return how many rows an export will write (for a progress bar)."""
    stmt, _ = statement(kind, f)  # counting may use any index
    return int(await conn.scalar(select(func.count()).select_from(stmt.subquery())) or 0)


def raw_statement(kind: str, f: Filters, dialect: str) -> tuple[AnySelect, Any]:
    """Return the export's SELECT returning raw driver values (see `converter`)."""
    stmt, key = statement(kind, f, dialect)
    raw = [_raw_column(c, _kind_of(c), dialect) for c in stmt.selected_columns]
    return stmt.with_only_columns(*raw, maintain_column_froms=True), key


async def stream(
    conn: AsyncConnection, kind: str, f: Filters, chunk: int = DEFAULT_CHUNK
) -> AsyncIterator[Sequence[Sequence[Any]]]:
    """Yield the export's raw rows, `chunk` at a time, ordered by the main table's id.

    Turn each row into plain values with `converter(kind, csv=...)`.
    """
    stmt, key = raw_statement(kind, f, conn.dialect.name)
    if conn.dialect.name == "postgresql":
        result = await conn.stream(stmt.order_by(key).execution_options(yield_per=chunk))
        async for part in result.partitions(chunk):
            yield part
        return
    last: uuid.UUID | None = None
    while True:
        page = stmt if last is None else stmt.where(key > last)
        rows = (await conn.execute(page.order_by(key).limit(chunk))).all()
        if not rows:
            return
        last = uuid.UUID(str(rows[-1][0]))
        yield rows
        if len(rows) < chunk:
            return


# --------------------------------------------------------------------------- metrics


async def metrics(
    db: AsyncSession,
    company_id: uuid.UUID,
    *,
    since: datetime | None,
    until: datetime | None,
    department_id: uuid.UUID | None,
) -> MetricsSummary:
    """Return the metrics summary of one company (the same report as /api/v1/metrics)."""
    from zapd.services.compliance import (
        helpdesk_metrics,  # pydantic models: loaded only when needed
    )

    w = await helpdesk_metrics.window(
        db,
        CLI_PRINCIPAL,
        since=since,
        until=until,
        department_id=department_id,
        company_id=company_id,
    )
    return await helpdesk_metrics.summary(db, w)


METRIC_COLUMNS = ["section", "item", "metric", "value"]

# A list element is named by the first of these keys it has (agents by id: names repeat).
_ITEM_KEYS = ("status", "day", "user_id", "department_id", "name")


def _item_label(element: dict[str, Any]) -> str:
    for key in _ITEM_KEYS:
        if key in element:
            value = element[key]
            if value is None:
                return "(none)"
            if key == "status" and isinstance(value, int):
                return TicketStatus(value).name.lower()
            return str(value)
    return ""


def metric_rows(doc: dict[str, Any]) -> list[tuple[str, str, str, Any]]:
    """Flatten a metrics summary (as JSON) to (section, item, metric, value) rows."""
    out: list[tuple[str, str, str, Any]] = []

    def walk(section: str, item: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if isinstance(v, dict | list):
                    walk(f"{section}.{k}" if section else k, item, v)
                else:
                    out.append((section, item, k, v))
        elif isinstance(value, list):
            for element in value:
                if isinstance(element, dict):
                    label = _item_label(element)
                    for k, v in element.items():
                        out.append((section, label, k, v))
                else:
                    out.append((section, item, "", element))

    walk("", "", doc)
    return out
