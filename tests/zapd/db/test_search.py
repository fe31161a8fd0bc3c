"""The `client_terms` index of accent-insensitive name search: terms, prefix ranges, and
the migration that back-fills it (both backends). The API side: tests/zapd/api/test_search.py."""

from __future__ import annotations

import uuid

from sqlalchemy import insert, select

from shared.cnpj import cnpj_check_digits
from tests.conftest import Backend
from zapd.db import migrate, search
from zapd.db.models import Client, ClientTerm, Company
from zapd.db.types import utcnow


def test_terms_and_prefix_ranges() -> None:
    assert search.terms_of("Lúcia  Ferreira-Gonçalves", None) == {
        "lucia",
        "ferreira",
        "goncalves",
    }
    assert search.terms_of(None, "") == set()
    assert search.query_words("  LÚCIA, fer ") == ["lucia", "fer"]
    assert search._successor("luc") == "lud"
    assert search._successor("az") == "b"
    assert search._successor("z9") == "za"
    assert search._successor("zz") is None


async def test_migration_back_fills_the_terms(backend: Backend) -> None:
    engine = backend.engine()
    try:
        await migrate.upgrade(engine, "0001")
        company, client = uuid.uuid4(), uuid.uuid4()
        base = "55667788" + "0001"
        async with engine.begin() as conn:
            # Core inserts: no ORM listener runs, as on a database written by 0001's code.
            await conn.execute(
                insert(Company.__table__).values(
                    id=company,
                    name="Acme",
                    cnpj=base + cnpj_check_digits(base),
                    timezone="America/Sao_Paulo",
                    locale="pt_BR",
                    settings={},
                    created_at=utcnow(),
                    updated_at=utcnow(),
                )
            )
            await conn.execute(
                insert(Client.__table__).values(
                    id=client,
                    company_id=company,
                    name="Lúcia Ferreira",
                    profile_name="Lu",
                    custom_fields={},
                    created_at=utcnow(),
                    updated_at=utcnow(),
                )
            )
        await migrate.upgrade(engine)
        async with engine.connect() as conn:
            terms = (
                await conn.execute(select(ClientTerm.term).where(ClientTerm.client_id == client))
            ).scalars()
            assert set(terms) == {"lucia", "ferreira", "lu"}
    finally:
        await engine.dispose()
