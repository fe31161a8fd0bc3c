"""The batch snapshot of identities finds and creates exactly as `identity.find_or_create`.

The same sequence of senders goes through `identity.find_or_create` in one company and
through one `Known` snapshot (read once, as a batch does) in another; clients found or
created, the identities they hold and their phone / LID must match step by step.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import ClientIdentityKind
from tests.zapd.db import factories as f
from zapd.db.models import Client, ClientIdentity, Company
from zapd.kernel.held import Held
from zapd.services.people import identity
from zapd.services.people.identity import Identity
from zapd.services.people.known import Known

WITH_9 = "+5511987654321"
WITHOUT_9 = "+551187654321"
LID = "123456789012345@lid"
OTHER = "+5521998887777"
LEGACY = "+5531991112222"  # a client row written before identities existed

SENDERS = [
    Identity(phone=WITH_9),
    Identity(phone=WITHOUT_9),  # the same person, the other spelling
    Identity(lid=LID),  # a LID nobody holds yet: a new client
    Identity(phone=WITH_9, lid=LID),  # held by two clients: identity matches win, oldest
    Identity(phone=OTHER, bsuid="BR.1502"),
    Identity(bsuid="BR.1502"),
    Identity(phone=LEGACY),  # found through clients.phone, then given its identities
    Identity(phone=LEGACY, lid="999@lid"),
]


async def _company(db: AsyncSession) -> Company:
    c = f.company()
    db.add(c)
    await db.flush()
    db.add(Client(company_id=c.id, phone=LEGACY, profile_name="Legado"))
    await db.flush()
    return c


async def _held(db: AsyncSession, client_id: uuid.UUID) -> set[tuple[ClientIdentityKind, str]]:
    rows = await db.execute(
        select(ClientIdentity.kind, ClientIdentity.value).where(
            ClientIdentity.client_id == client_id
        )
    )
    return {(k, v) for k, v in rows.all()}


@pytest.mark.parametrize("held", [False, True], ids=["session", "held"])
async def test_a_snapshot_follows_the_find_or_create_rules(db: AsyncSession, held: bool) -> None:
    plain, batched = await _company(db), await _company(db)
    known = await Known.read(db, batched.id, SENDERS)
    if held:  # new clients and identities wait for one insert (as in a batch's straight run)
        known.held = Held()
    assert all(known.covers(s) for s in SENDERS)
    seen: dict[str, dict[uuid.UUID, int]] = {"plain": {}, "batched": {}}

    def label(which: str, client_id: uuid.UUID) -> int:
        """The same client gets the same number in both companies if the rules match."""
        return seen[which].setdefault(client_id, len(seen[which]))

    for n, sender in enumerate(SENDERS):
        a, a_new = await identity.find_or_create(db, plain.id, sender, profile_name=f"P{n}")
        b, b_new = await known.find_or_create(db, sender, profile_name=f"P{n}")
        if known.held is not None:
            await known.held.insert(db)
        await db.flush()
        assert a_new == b_new, n
        assert label("plain", a.id) == label("batched", b.id), n
        assert (a.phone, a.lid, a.profile_name) == (b.phone, b.lid, b.profile_name), n
        assert await _held(db, a.id) == await _held(db, b.id), n
    for company in (plain, batched):
        count = len(
            list(await db.scalars(select(Client.id).where(Client.company_id == company.id)))
        )
        assert count == 4  # WITH_9 person, the LID one, OTHER/BSUID, LEGACY


async def test_an_uncovered_sender_takes_the_query_path(db: AsyncSession) -> None:
    c = await _company(db)
    known = await Known.read(db, c.id, [Identity(phone=WITH_9)])
    stranger = Identity(phone=OTHER)
    assert not known.covers(stranger)
    first, created = await known.find_or_create(db, stranger)
    again, created_again = await identity.find_or_create(db, c.id, stranger)
    assert created and not created_again and again.id == first.id
