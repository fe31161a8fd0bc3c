"""Apply and inspect Alembic migrations from code (zapd start-up, `zapctl db ...`)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import types as satypes
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from zapd.db import stats
from zapd.db.types import IntEnumType, UTCDateTime

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent.parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    """Build the Alembic config pointing at zap's migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Render zap's column types as plain SQL types so migrations never import app code."""
    if type_ == "type":
        if isinstance(obj, IntEnumType):
            return "sa.SmallInteger()"
        if isinstance(obj, UTCDateTime):
            return "sa.DateTime(timezone=True)"
        if isinstance(obj, satypes.JSON) and obj._variant_mapping:
            autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
            return "sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')"
    return False


@dataclass(frozen=True)
class MigrationStatus:
    """Where a database stands against the migration scripts."""

    current: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        """Tell whether the database is at the newest revision."""
        return self.current == self.head


@cache
def head_revision() -> str:
    """Return the newest revision id in the scripts."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("no migration scripts found")
    return head


def _current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply migrations up to `revision`; then refresh the planner statistics of the
    tables that need it (`zapd.db.stats`: on SQLite new indexes have none, and tables
    whose size moved; on PostgreSQL tables with rows never analyzed)."""

    def run(conn: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)
    await stats.refresh(engine)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    """Revert migrations down to `revision` ("base" for an empty database)."""

    def run(conn: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)


async def status(engine: AsyncEngine) -> MigrationStatus:
    """Report the database's revision and the scripts' head."""
    async with engine.connect() as conn:
        current = await conn.run_sync(_current)
    return MigrationStatus(current=current, head=head_revision())


async def schema_diff(engine: AsyncEngine) -> list[Any]:
    """List the differences autogenerate finds between the database and the models."""
    from zapd.db.models import Base

    def run(conn: Connection) -> list[Any]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, Base.metadata))

    async with engine.connect() as conn:
        return await conn.run_sync(run)
