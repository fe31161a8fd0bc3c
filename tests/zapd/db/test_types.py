"""Column types behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import SessionStatus
from tests.zapd.db import factories as f
from zapd.db.engine import json_text
from zapd.db.models import Company, Event, WaSession
from zapd.db.types import new_id


def test_ids_are_time_ordered_uuid7() -> None:
    ids = [new_id() for _ in range(1000)]
    assert all(i.version == 7 for i in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


async def test_datetimes_come_back_aware_utc(db: AsyncSession) -> None:
    brt = timezone(timedelta(hours=-3))
    c = f.company(name="Tz")
    db.add(c)
    await db.flush()
    s = f.session(c, qr_expires_at=datetime(2026, 1, 2, 9, 30, tzinfo=brt))
    db.add(s)
    await db.commit()
    db.expunge_all()
    got = await db.scalar(select(WaSession))
    assert got is not None
    assert got.qr_expires_at == datetime(2026, 1, 2, 12, 30, tzinfo=UTC)
    assert got.qr_expires_at.tzinfo is not None
    assert got.created_at.tzinfo is not None


async def test_naive_datetime_is_refused(db: AsyncSession) -> None:
    c = f.company()
    db.add(c)
    await db.flush()
    db.add(f.session(c, qr_expires_at=datetime(2026, 1, 1)))
    with pytest.raises(StatementError):
        await db.commit()


async def test_enums_round_trip_as_members(db: AsyncSession) -> None:
    c = f.company(settings={"agent_prefix": True, "nested": {"ç": [1, 2]}})
    db.add(c)
    await db.flush()
    db.add(f.session(c, status=SessionStatus.WAITING_QR))
    await db.commit()
    db.expunge_all()
    s = await db.scalar(select(WaSession))
    assert s is not None and s.status is SessionStatus.WAITING_QR
    co = await db.scalar(select(Company))
    assert co is not None and co.settings == {"agent_prefix": True, "nested": {"ç": [1, 2]}}


JSON_VALUES: list[Any] = [
    {"body": "ação ✓ 😀", "nested": {"list": [1, 2.5, None, True, "x"]}, "empty": {}},
    {3: "int key", 2.5: "float key", False: "bool key", None: "null key"},
    {"big": 2**70, "neg": -(2**65)},  # past orjson's 64 bits: json.dumps writes them
    {"lone surrogate": "\ud800"},  # orjson refuses it: json.dumps escapes it
    [{"a": (1, 2)}, "tuple becomes a list"],
]


@pytest.mark.parametrize("value", JSON_VALUES)
def test_json_text_reads_back_as_json_dumps_does(value: Any) -> None:
    assert json.loads(json_text(value)) == json.loads(json.dumps(value))


@pytest.mark.parametrize("value", [{"at": datetime.now(UTC)}, {"ids": {1, 2}}, object()])
def test_json_text_refuses_what_json_dumps_refuses(value: Any) -> None:
    with pytest.raises(TypeError):
        json.dumps(value)
    with pytest.raises(TypeError):
        json_text(value)


async def test_json_columns_store_what_they_read_back(db: AsyncSession) -> None:
    c = f.company(name="Json")
    db.add(c)
    await db.flush()
    stored = {"body": "ação ✓ 😀", "n": [1, 2.5, None, True], "deep": {"k": {"v": "w"}}}
    db.add(Event(company_id=c.id, seq=1, type="t", data=stored))
    await db.commit()
    db.expunge_all()
    assert await db.scalar(select(Event.data)) == stored
