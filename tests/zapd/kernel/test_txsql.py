"""`TxStatement`: what SQLAlchemy's session would give, past its layers on SQLite.

Each test runs the statement both ways in one transaction and compares, on both
backends (on PostgreSQL past the session too, on the asyncpg connection).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Integer, and_, bindparam, func, inspect, select, tuple_, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.enums import FlowState, TicketStatus
from tests.zapd.db import factories as f
from zapd.db.models import Chat, Client, Company, Department, Ticket, WaSession
from zapd.db.sqlite_driver import OneTripConnection
from zapd.kernel.pgtx import connection as pg_connection
from zapd.kernel.transient import is_transient
from zapd.kernel.txsql import TxStatement, _driver, rows_all

_TICKETS = select(Ticket).where(
    Ticket.client_id.in_(bindparam("clients", expanding=True)),
    Ticket.status != TicketStatus.CLOSED,
)
_COLUMNS = select(Ticket.id, Ticket.status, Ticket.flow_data, Ticket.created_at).where(
    Ticket.company_id == bindparam("company_id"),
    Ticket.number.in_(bindparam("numbers", expanding=True)),
)
_HEAD = (
    select(Company, WaSession, Department)
    .outerjoin(
        WaSession,
        and_(
            WaSession.company_id == Company.id,
            WaSession.id.in_(bindparam("sessions", expanding=True)),
        ),
    )
    .outerjoin(Department, Department.company_id == Company.id)
    .where(Company.id == bindparam("company_id"))
)
_BUMP = (
    update(Company)
    .where(Company.id == bindparam("company_id"))
    .values(last_ticket_number=Company.last_ticket_number + bindparam("count"))
    .execution_options(synchronize_session=False)
)


async def _seed(db: AsyncSession) -> tuple[Company, WaSession, list[Client], list[Ticket]]:
    company = f.company()
    db.add(company)
    await db.flush()
    session = f.session(company)
    clients = [f.client(company, phone=f"+55119123456{i:02d}") for i in range(3)]
    db.add_all([session, *clients])
    await db.flush()
    tickets = [
        f.ticket(company, session, c, n + 1, flow_state=FlowState.AWAITING_MENU_CHOICE)
        for n, c in enumerate(clients)
    ]
    tickets[0].flow_data = {"attempts": 2, "nested": {"a": [1, "b"]}}
    tickets[2].status = TicketStatus.CLOSED
    db.add_all(tickets)
    await db.commit()
    db.expunge_all()
    return company, session, clients, tickets


def _columns(obj: object) -> dict[str, object]:
    return {a.key: getattr(obj, a.key) for a in inspect(type(obj)).column_attrs}


async def test_columns_with_expanding_lists_match_the_session(db: AsyncSession) -> None:
    company, _, _, tickets = await _seed(db)
    query = TxStatement(_COLUMNS)
    params = {"company_id": company.id, "numbers": [1, 2, 3, 99]}
    async with db.begin():
        sqlite = db.get_bind().dialect.name == "sqlite"
        assert isinstance(await _driver(db), OneTripConnection) is sqlite  # past the session
        ours = sorted(await query.rows(db, params), key=lambda r: r[0])
        theirs = sorted((tuple(r) for r in await db.execute(_COLUMNS, params)), key=lambda r: r[0])
    assert ours == theirs
    assert len(ours) == 3
    first = next(r for r in ours if r[0] == tickets[0].id)
    assert isinstance(first[0], uuid.UUID)
    assert first[1] is TicketStatus.PENDING
    assert first[2] == {"attempts": 2, "nested": {"a": [1, "b"]}}
    assert first[3].tzinfo is not None


async def test_entities_are_persistent_and_loaded_like_a_query(db: AsyncSession) -> None:
    _, _, clients, _ = await _seed(db)
    query = TxStatement(_TICKETS)
    params = {"clients": [c.id for c in clients]}
    async with db.begin():
        ours = await query.rows(db, params)
        assert all(inspect(t).persistent for t in ours)
        assert all(t in db for t in ours)
        ours_values = sorted((_columns(t) for t in ours), key=lambda v: str(v["id"]))
        db.expunge_all()
        theirs = list(await db.scalars(_TICKETS, params))
        theirs_values = sorted((_columns(t) for t in theirs), key=lambda v: str(v["id"]))
    assert ours_values == theirs_values
    assert len(ours) == 2  # the closed one is left out by the WHERE


async def test_an_object_the_session_holds_comes_back_as_it_is(db: AsyncSession) -> None:
    _, _, clients, tickets = await _seed(db)
    async with db.begin():
        held = await db.get(Ticket, tickets[0].id)
        assert held is not None
        held.unread_count = 41  # pending, not flushed: not overwritten by the read
        found = await TxStatement(_TICKETS).rows(db, {"clients": [clients[0].id]})
        assert found == [held]
        assert found[0].unread_count == 41


async def test_changes_to_loaded_entities_are_written_at_the_flush(db: AsyncSession) -> None:
    _, _, clients, tickets = await _seed(db)
    async with db.begin():
        (ticket,) = await TxStatement(_TICKETS).rows(db, {"clients": [clients[1].id]})
        ticket.unread_count = 7
        ticket.flow_data = {"changed": True}
    db.expunge_all()
    async with db.begin():
        again = await db.get(Ticket, tickets[1].id)
        assert again is not None
        assert (again.unread_count, again.flow_data) == (7, {"changed": True})


async def test_outer_joined_entities_are_none_when_absent(db: AsyncSession) -> None:
    company, session, _, _ = await _seed(db)
    query = TxStatement(_HEAD)
    async with db.begin():
        rows = await query.rows(db, {"company_id": company.id, "sessions": [session.id]})
        assert len(rows) == 1
        got_company, got_session, department = rows[0]
        assert (got_company.id, got_session.id, department) == (company.id, session.id, None)
        rows = await query.rows(db, {"company_id": company.id, "sessions": [uuid.uuid4()]})
        assert rows[0][1] is None and rows[0][0] is got_company


async def test_an_update_stamps_onupdate_columns_and_may_go_behind(db: AsyncSession) -> None:
    company, _, _, _ = await _seed(db)
    bump = TxStatement(_BUMP)
    before = datetime.now(UTC) - timedelta(seconds=1)
    async with db.begin():
        await bump.run(db, {"company_id": company.id, "count": 2})
        await bump.run(db, {"company_id": company.id, "count": 3}, behind=True)
        # The queued write runs before the next statement: the read sees both.
        row = (
            await TxStatement(
                select(Company.last_ticket_number, Company.updated_at).where(
                    Company.id == bindparam("id")
                )
            ).rows(db, {"id": company.id})
        )[0]
    assert row[0] == 5
    assert row[1] >= before


async def test_an_empty_list_answers_through_the_session(db: AsyncSession) -> None:
    company, _, _, _ = await _seed(db)
    async with db.begin():
        assert await TxStatement(_COLUMNS).rows(db, {"company_id": company.id, "numbers": []}) == []
        assert await TxStatement(_TICKETS).rows(db, {"clients": []}) == []


async def test_chats_by_key_match_the_session(db: AsyncSession) -> None:
    company, session, clients, _ = await _seed(db)
    async with db.begin():
        chat = f.chat(company, session, clients[0], unread_count=3)
        db.add(chat)
    db.expunge_all()
    stmt = select(Chat).where(
        Chat.company_id == bindparam("company_id"),
        Chat.wa_chat_id.in_(bindparam("jids", expanding=True)),
    )
    async with db.begin():
        (ours,) = await TxStatement(stmt).rows(
            db, {"company_id": company.id, "jids": [chat.wa_chat_id, "x@s.whatsapp.net"]}
        )
        values = _columns(ours)
    db.expunge_all()
    async with db.begin():
        theirs = await db.get(Chat, chat.id)
        assert theirs is not None
        assert values == _columns(theirs)


async def test_several_reads_in_one_round_answer_as_each_alone(db: AsyncSession) -> None:
    company, session, clients, _ = await _seed(db)
    numbers = TxStatement(_COLUMNS)
    tickets = TxStatement(_TICKETS)
    head = TxStatement(_HEAD)
    queries = [
        (numbers, {"company_id": company.id, "numbers": [1, 3]}),
        (tickets, {"clients": [c.id for c in clients]}),
        (numbers, {"company_id": company.id, "numbers": []}),  # through the session
        (head, {"company_id": company.id, "sessions": [session.id]}),
    ]
    async with db.begin():
        together = await rows_all(db, queries)
        alone = [await q.rows(db, values) for q, values in queries]
    assert [sorted(map(str, rows)) for rows in together] == [
        sorted(map(str, rows)) for rows in alone
    ]
    assert [len(rows) for rows in together] == [2, 2, 0, 1]
    assert set(together[1]) == set(alone[1])  # the same persistent objects


def _postgresql(db: AsyncSession) -> None:
    if db.get_bind().dialect.name != "postgresql":
        pytest.skip("asyncpg's path")


async def _no_session(*_: object, **__: object) -> None:
    raise AssertionError("went through the session")


async def test_postgresql_runs_on_the_asyncpg_connection_with_lists_as_arrays(
    db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL: past the session, one text whatever the lists' lengths, and an empty
    list (IN: nothing; NOT IN: everything) needs no detour."""
    _postgresql(db)
    company, _, _, tickets = await _seed(db)
    not_in = TxStatement(
        select(Ticket.number).where(
            Ticket.company_id == bindparam("company_id"),
            Ticket.number.not_in(bindparam("numbers", expanding=True)),
        )
    )
    columns = TxStatement(_COLUMNS)
    async with db.begin():
        assert await pg_connection(db) is not None
        theirs = {
            n: sorted(
                tuple(r)
                for r in await db.execute(_COLUMNS, {"company_id": company.id, "numbers": ns})
            )
            for n, ns in (("two", [1, 2]), ("three", [1, 2, 3]))
        }
        monkeypatch.setattr(db, "execute", _no_session)
        assert (
            sorted(await columns.rows(db, {"company_id": company.id, "numbers": [1, 2]}))
            == theirs["two"]
        )
        assert (
            sorted(await columns.rows(db, {"company_id": company.id, "numbers": [1, 2, 3]}))
            == theirs["three"]
        )
        assert await columns.rows(db, {"company_id": company.id, "numbers": []}) == []
        assert sorted(await not_in.rows(db, {"company_id": company.id, "numbers": [2]})) == [
            (1,),
            (3,),
        ]
        assert sorted(await not_in.rows(db, {"company_id": company.id, "numbers": []})) == [
            (1,),
            (2,),
            (3,),
        ]
        assert len(await TxStatement(_TICKETS).rows(db, {"clients": []})) == 0
    plan = columns.plan(db.get_bind().dialect)
    assert "ANY (" in plan.parts[0] and not plan.expanding
    assert len(tickets) == 3


async def test_postgresql_update_returning_gives_its_rows(db: AsyncSession) -> None:
    _postgresql(db)
    company, _, _, _ = await _seed(db)
    take = TxStatement(_BUMP.returning(Company.last_ticket_number, Company.updated_at))
    async with db.begin():
        (first,) = await take.rows(db, {"company_id": company.id, "count": 2})
        (second,) = await take.rows(db, {"company_id": company.id, "count": 3})
        assert await take.rows(db, {"company_id": uuid.uuid4(), "count": 1}) == []
    assert (first[0], second[0]) == (2, 5)
    assert second[1].tzinfo is not None and second[1] >= first[1]


async def test_postgresql_failures_raise_what_the_session_raises(
    db: AsyncSession, engine: AsyncEngine
) -> None:
    """A statement's error is SQLAlchemy's; a connection that died is invalidated, and
    the failure reads as transient."""
    _postgresql(db)
    await _seed(db)
    broken = select(Ticket.id).where(Ticket.number == func.div(1, bindparam("zero", type_=Integer)))
    async with db.begin():
        with pytest.raises(DBAPIError) as ours:
            await TxStatement(broken).rows(db, {"zero": 0})
        await db.rollback()
    async with db.begin():
        with pytest.raises(DBAPIError) as theirs:
            await db.execute(broken, {"zero": 0})
        await db.rollback()
    assert type(ours.value) is type(theirs.value)
    assert type(ours.value.orig) is type(theirs.value.orig)
    assert not is_transient(ours.value)
    # The connection dies under a transaction: invalidated, transient, the next one works.
    async with db.begin():
        pid = (await db.execute(select(func.pg_backend_pid()))).scalar_one()
        async with engine.connect() as other:
            await other.execute(select(func.pg_terminate_backend(pid)))
        with pytest.raises(DBAPIError) as dead:
            await TxStatement(_TICKETS).rows(db, {"clients": [uuid.uuid4()]})
        assert dead.value.connection_invalidated
        assert is_transient(dead.value)
        await db.rollback()
    async with db.begin():
        assert await TxStatement(_TICKETS).rows(db, {"clients": [uuid.uuid4()]}) == []


async def test_postgresql_each_transaction_runs_on_its_own_connection(
    db: AsyncSession, engine: AsyncEngine
) -> None:
    _postgresql(db)
    _, _, clients, _ = await _seed(db)
    async with db.begin():
        first = await pg_connection(db)
        await TxStatement(_TICKETS).rows(db, {"clients": [clients[0].id]})
    # The first transaction's connection is busy elsewhere now: the next one is looked up.
    async with engine.connect() as elsewhere:
        await elsewhere.execute(select(1))
        async with db.begin():
            second = await pg_connection(db)
            raw = await (await db.connection()).get_raw_connection()
            assert second is not None and second is not first
            assert second._adapter is raw.dbapi_connection
            assert len(await TxStatement(_TICKETS).rows(db, {"clients": [clients[0].id]})) == 1


def test_postgresql_refuses_a_tuple_in_list_it_cannot_send_as_an_array() -> None:
    stmt = select(Ticket.id).where(
        tuple_(Ticket.company_id, Ticket.number).in_(bindparam("keys", expanding=True))
    )
    with pytest.raises(ValueError):
        TxStatement(stmt).plan(postgresql.asyncpg.dialect())


def test_the_cheaper_result_processors_give_what_sqlalchemys_give() -> None:
    """`result_processor`: memoised ids and states, `fromisoformat` datetimes on SQLite."""
    from sqlalchemy.dialects import postgresql, sqlite

    from zapd.kernel.txsql import MEMO_LIMIT, result_processor

    d = sqlite.dialect()
    cols = Ticket.__table__.c

    def theirs(column: Any) -> Any:
        return column.type.dialect_impl(d).result_processor(d, None)

    stamp, uid = cols.created_at, cols.id
    texts = [
        "2026-12-07 05:11:28.192903",
        "2026-12-07 05:11:28",  # stored before microseconds were kept
        "2026-12-07 05:11:28.1929",  # not SQLAlchemy's text: its own parser answers
        "2026-02-29 05:11:28.000000",  # no such day: both refuse
        None,
    ]
    for text in texts:
        try:
            expected = theirs(stamp)(text)
        except ValueError:
            with pytest.raises(ValueError):
                result_processor(stamp.type, d)(text)  # type: ignore[misc]
            continue
        got = result_processor(stamp.type, d)(text)  # type: ignore[misc]
        assert got == expected and (got is None or got.tzinfo is UTC)
    mine = result_processor(uid.type, d)
    assert mine is not None
    for _ in range(2):  # the second time from the memo
        for value in [uuid.uuid4().hex for _ in range(3)] + [None]:
            assert mine(value) == theirs(uid)(value)
    many = [uuid.uuid4().hex for _ in range(MEMO_LIMIT + 10)]  # past the bound: still right
    assert [mine(v) for v in many[-20:]] == [uuid.UUID(v) for v in many[-20:]]
    state = result_processor(cols.status.type, d)
    assert state is not None and state(1) is TicketStatus(1) and state(None) is None
    with pytest.raises(ValueError):
        state(99)
    assert result_processor(cols.number.type, d) is None  # nothing to convert
    pg = postgresql.asyncpg.dialect()  # type: ignore[attr-defined]
    assert result_processor(stamp.type, pg) is not None
