"""Uniqueness races answer 409, never 500: one mechanism at the API edge, every route."""

from __future__ import annotations

import asyncio
from collections import Counter

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from tests.zapd.api.conftest import Live, new_cnpj
from zapd.api.errors import conflict_of
from zapd.db.integrity import Violation, classify
from zapd.db.models import Company, Department

N = 8


async def test_concurrent_creates_of_one_department_name(live: Live) -> None:
    t = await live.tenant()
    bodies = [{"name": "Plantão Noturno", "slug": f"plantao-{i}"} for i in range(N)]
    answers = await asyncio.gather(*(t.admin.post("/api/v1/departments", json=b) for b in bodies))
    statuses = Counter(r.status_code for r in answers)
    assert statuses == {201: 1, 409: N - 1}, [r.text for r in answers]
    for r in answers:
        if r.status_code == 409:
            assert r.json()["error"] == "ERR_CONFLICT", r.text
            assert "department" in r.json()["message"] and "name" in r.json()["message"]
    async with live.kernel.read() as db:
        n = await db.scalar(
            select(func.count())
            .select_from(Department)
            .where(Department.company_id == t.company_id, Department.name == "Plantão Noturno")
        )
    assert n == 1


async def test_concurrent_creates_of_one_cnpj(live: Live) -> None:
    assert live.root is not None
    cnpj = new_cnpj()
    answers = await asyncio.gather(
        *(
            live.root.post("/api/v1/companies", json={"name": f"Corrida {i}", "cnpj": cnpj})
            for i in range(N)
        )
    )
    statuses = Counter(r.status_code for r in answers)
    assert statuses == {201: 1, 409: N - 1}, [r.text for r in answers]
    assert {r.json()["error"] for r in answers if r.status_code == 409} == {"ERR_CNPJ_TAKEN"}
    async with live.kernel.read() as db:
        n = await db.scalar(select(func.count()).select_from(Company).where(Company.cnpj == cnpj))
    assert n == 1


async def test_classify_on_this_backend(live: Live) -> None:
    # The raw driver error, as both backends word it, reduced to table and columns.
    t = await live.tenant()
    try:
        async with live.kernel.tx() as db:
            db.add(Department(company_id=t.company_id, name="Laboratório", slug="outro-slug"))
    except IntegrityError as exc:
        v = classify(exc)
    else:
        raise AssertionError("the duplicate name was stored")
    assert v is not None and v.kind == "unique"
    assert v.table == "departments" and v.columns == ("company_id", "name")
    code, message = conflict_of(v)
    assert code == "ERR_CONFLICT" and message.startswith("a department with this name")


def test_conflict_messages() -> None:
    assert conflict_of(Violation("unique", "companies", ("cnpj",))) == (
        "ERR_CNPJ_TAKEN",
        "a company with this CNPJ already exists",
    )
    assert conflict_of(Violation("unique", "users", ("email",)))[0] == "ERR_EMAIL_TAKEN"
    code, message = conflict_of(Violation("unique", "quick_replies", ("company_id", "shortcut")))
    assert code == "ERR_CONFLICT" and message.startswith("a quick reply with this shortcut")
    code, message = conflict_of(Violation("foreign_key"))
    assert code == "ERR_CONFLICT" and "reload and retry" in message
