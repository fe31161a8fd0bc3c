"""The one find-or-create of a client: phone spellings, LID, legacy rows, two companies."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import ClientIdentityKind
from tests.zapd.db import factories as f
from zapd.db.models import Client, ClientIdentity, Company
from zapd.services.people import identity
from zapd.services.people.identity import Identity

WITH_9 = "+5511987654321"
WITHOUT_9 = "+551187654321"  # the same Brazilian mobile without the 9th digit
LID = "123456789012345@lid"


async def _company(db: AsyncSession) -> Company:
    c = f.company()
    db.add(c)
    await db.flush()
    return c


async def _identities(db: AsyncSession, client: Client) -> set[tuple[ClientIdentityKind, str]]:
    rows = await db.execute(
        select(ClientIdentity.kind, ClientIdentity.value).where(
            ClientIdentity.client_id == client.id
        )
    )
    return {(kind, value) for kind, value in rows.all()}


async def _clients(db: AsyncSession, company: Company) -> int:
    return int(await db.scalar(select(func.count()).where(Client.company_id == company.id)) or 0)


async def test_creates_once_with_every_phone_spelling(db: AsyncSession) -> None:
    c = await _company(db)
    client, created = await identity.find_or_create(
        db, c.id, Identity(phone=WITH_9), profile_name="Ana"
    )
    assert created and client.phone == WITH_9 and client.profile_name == "Ana"
    assert client.wa_user_id == "5511987654321@s.whatsapp.net"
    assert await _identities(db, client) == {
        (ClientIdentityKind.PHONE, WITH_9),
        (ClientIdentityKind.PHONE_ALT, WITHOUT_9),
    }
    again, created = await identity.find_or_create(db, c.id, Identity(phone=WITHOUT_9))
    assert not created and again.id == client.id
    assert await _clients(db, c) == 1


async def test_a_lid_joins_the_phone_client_and_finds_it_alone(db: AsyncSession) -> None:
    c = await _company(db)
    client, _ = await identity.find_or_create(db, c.id, Identity(phone=WITH_9))
    same, created = await identity.find_or_create(
        db, c.id, Identity(phone=WITH_9, lid=LID), profile_name="Ana B."
    )
    assert not created and same.id == client.id
    assert same.lid == LID and same.profile_name == "Ana B."
    assert (ClientIdentityKind.LID, LID) in await _identities(db, client)
    by_lid = await identity.find(db, c.id, Identity(lid=LID))
    assert by_lid is not None and by_lid.id == client.id


async def test_a_lid_only_client_gets_its_phone_later(db: AsyncSession) -> None:
    c = await _company(db)
    client, created = await identity.find_or_create(db, c.id, Identity(lid=LID))
    assert created and client.phone is None and client.wa_user_id is None
    same, created = await identity.find_or_create(db, c.id, Identity(phone=WITH_9, lid=LID))
    assert not created and same.id == client.id and same.phone == WITH_9
    assert await _identities(db, client) == {
        (ClientIdentityKind.LID, LID),
        (ClientIdentityKind.PHONE, WITH_9),
        (ClientIdentityKind.PHONE_ALT, WITHOUT_9),
    }


async def test_a_legacy_row_without_identities_is_found_by_its_phone(db: AsyncSession) -> None:
    c = await _company(db)
    legacy = f.client(c, phone=WITHOUT_9)
    db.add(legacy)
    await db.flush()
    found, created = await identity.find_or_create(db, c.id, Identity(phone=WITH_9))
    assert not created and found.id == legacy.id
    # It now holds its identities, so the next lookup goes through them.
    assert (ClientIdentityKind.PHONE, WITH_9) in await _identities(db, legacy)


async def test_an_identity_held_by_another_client_is_never_taken(db: AsyncSession) -> None:
    c = await _company(db)
    first, _ = await identity.find_or_create(db, c.id, Identity(lid=LID))
    second, _ = await identity.find_or_create(db, c.id, Identity(phone=WITH_9))
    # An event naming both: the LID's client is found first; the phone stays the other's.
    found, created = await identity.find_or_create(db, c.id, Identity(phone=WITH_9, lid=LID))
    assert not created and found.id == first.id
    await db.flush()  # no unique-constraint failure
    assert (ClientIdentityKind.PHONE, WITH_9) not in await _identities(db, first)
    assert (ClientIdentityKind.PHONE, WITH_9) in await _identities(db, second)


async def test_companies_never_share_clients(db: AsyncSession) -> None:
    a, b = await _company(db), await _company(db)
    in_a, _ = await identity.find_or_create(db, a.id, Identity(phone=WITH_9))
    in_b, created = await identity.find_or_create(db, b.id, Identity(phone=WITHOUT_9))
    assert created and in_b.id != in_a.id
    assert await identity.find_ids(db, Identity(phone=WITH_9), a.id) == [in_a.id]
    assert set(await identity.find_ids(db, Identity(phone=WITH_9), None)) == {in_a.id, in_b.id}


async def test_nothing_known_finds_nothing(db: AsyncSession) -> None:
    c = await _company(db)
    assert await identity.find(db, c.id, Identity()) is None
    assert await identity.find_ids(db, Identity(), None) == []
