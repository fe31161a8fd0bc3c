"""The migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

from sqlalchemy import PrimaryKeyConstraint, UniqueConstraint, inspect

from zapd.db import migrate
from zapd.db.models import Base


async def test_migrated_schema_equals_models(backend) -> None:
    engine = backend.engine()
    try:
        assert (await migrate.status(engine)).current is None
        await migrate.upgrade(engine)
        st = await migrate.status(engine)
        assert st.up_to_date and st.current == migrate.head_revision()
        diff = await migrate.schema_diff(engine)
        assert diff == [], f"autogenerate found differences: {diff}"
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert set(Base.metadata.tables) <= tables
    finally:
        await engine.dispose()


async def test_downgrade_to_base_and_back(backend) -> None:
    engine = backend.engine()
    try:
        await migrate.upgrade(engine)
        await migrate.downgrade(engine, "base")
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert tables <= {"alembic_version"}
        await migrate.upgrade(engine)
        assert await migrate.schema_diff(engine) == []
    finally:
        await engine.dispose()


async def test_every_tenant_table_has_company_id() -> None:
    # Global by nature: companies themselves; refresh tokens and users carry a
    # nullable company_id because global admins have none.
    for name, table in Base.metadata.tables.items():
        if name == "companies":
            continue
        assert "company_id" in table.c, f"{name} lacks company_id"


async def test_spec_indexes_exist() -> None:
    def has_unique(table: str, cols: tuple[str, ...]) -> bool:
        t = Base.metadata.tables[table]
        for c in t.constraints:
            if isinstance(c, UniqueConstraint) and tuple(x.name for x in c.columns) == cols:
                return True
        return any(i.unique and tuple(x.name for x in i.columns) == cols for i in t.indexes)

    def has_index(table: str, cols: tuple[str, ...]) -> bool:
        # An index whose leading columns are `cols` serves what `cols` alone would.
        t = Base.metadata.tables[table]
        return any(tuple(x.name for x in i.columns)[: len(cols)] == cols for i in t.indexes)

    assert has_unique("messages", ("company_id", "session_id", "wa_message_id"))
    assert has_unique("chats", ("company_id", "session_id", "wa_chat_id"))
    assert has_unique("sessions", ("company_id", "phone"))
    assert has_unique("clients", ("company_id", "phone"))
    assert Base.metadata.tables["outbox"].c.idempotency_key.unique
    assert Base.metadata.tables["companies"].c.cnpj.unique
    assert has_unique("events", ("company_id", "seq"))
    assert has_index("messages", ("chat_id", "created_at"))
    assert has_index("chats", ("session_id", "last_message_at"))
    assert has_index("tickets", ("company_id", "department_id", "status"))
    assert has_index("tickets", ("company_id", "assignee_id", "status"))


# Parents deleted a handful at a time, by an admin: finding their children with one scan
# of the child table each time is fine. Any other parent is deleted in bulk (retention,
# an erasure, a company's removal cascading down), so its children need an index.
_FEW_AT_A_TIME = frozenset(
    {"companies", "users", "departments", "sessions", "api_tokens", "categories"}
)


async def test_bulk_deleted_parents_find_their_children_by_index() -> None:
    missing = []
    for name, table in Base.metadata.tables.items():
        leading = {i.columns[0].name for i in table.indexes} | {
            next(iter(c.columns)).name
            for c in table.constraints
            if isinstance(c, UniqueConstraint | PrimaryKeyConstraint) and c.columns
        }
        for fk in table.foreign_keys:
            if fk.column.table.name in _FEW_AT_A_TIME or fk.parent.name in leading:
                continue
            missing.append(f"{name}.{fk.parent.name} -> {fk.column.table.name}")
    assert missing == [], f"each row deleted would scan the child table: {missing}"
