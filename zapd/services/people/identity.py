"""Who a client is: the one find-or-create of a client from what the wire tells about it.

A client is known by identities (`client_identities` rows, unique per company, kind and
value): its canonical E.164 phone (PHONE), the other spelling of a Brazilian mobile with
or without the 9th digit (PHONE_ALT), WhatsApp's linked id (LID), Meta's business-scoped
user id (BSUID: a Cloud API user who hides their number). A new id kind is one more
field of `Identity`, one more line in `wanted` and one more branch in `_identity_match`;
every caller follows.

The rules, the same for the inbound pipeline, the agents' sends, the admin API and the
LGPD tools:
- lookup matches any identity row of the right kind (any phone spelling, the LID), then
  falls back to `clients.phone` (rows written before identities existed); when several
  clients match, identity matches win, then the oldest client (UUIDv7 order);
- find-or-create records every identity the found client does not hold yet, unless
  another client of the company already holds it (never a unique-constraint failure,
  never a second owner), and fills the phone / LID it lacks from the identities it holds.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import ClientIdentityKind
from shared.phone import br_phone_variants
from zapd.db.models import Client, ClientIdentity

PHONE_KINDS = (ClientIdentityKind.PHONE, ClientIdentityKind.PHONE_ALT)


@dataclass(frozen=True)
class Identity:
    """What is known of a client: any of its ids (each canonical, or None).

    `phones` and `wanted` are pure functions of the fields, computed once per instance
    (the inbound pipeline asks them of one sender's `Identity` many times a batch).
    """

    phone: str | None = None  # canonical E.164
    lid: str | None = None  # "...@lid"
    bsuid: str | None = None  # Meta's business-scoped user id, e.g. "BR.1502..."

    @property
    def key(self) -> str:
        """Return a stable label for this person (for per-sender locks and logs)."""
        return self.phone or self.lid or self.bsuid or "?"

    def phones(self) -> tuple[str, ...]:
        """Return every spelling of the phone, the canonical one first."""
        found: tuple[str, ...] | None = self.__dict__.get("_phones")
        if found is None:  # a pure function of the (frozen) fields: kept on the instance
            found = br_phone_variants(self.phone) if self.phone else ()
            object.__setattr__(self, "_phones", found)
        return found

    def wanted(self) -> tuple[tuple[ClientIdentityKind, str], ...]:
        """Return the identity rows a client known this way should hold."""
        found: tuple[tuple[ClientIdentityKind, str], ...] | None = self.__dict__.get("_wanted")
        if found is not None:
            return found
        rows: list[tuple[ClientIdentityKind, str]] = []
        phones = self.phones()
        if phones:
            rows.append((ClientIdentityKind.PHONE, phones[0]))
            rows.extend((ClientIdentityKind.PHONE_ALT, alt) for alt in phones[1:])
        if self.lid:
            rows.append((ClientIdentityKind.LID, self.lid))
        if self.bsuid:
            rows.append((ClientIdentityKind.BSUID, self.bsuid))
        found = tuple(rows)
        object.__setattr__(self, "_wanted", found)  # as `phones`
        return found


def _identity_match(identity: Identity) -> ColumnElement[bool] | None:
    conditions: list[ColumnElement[bool]] = []
    phones = identity.phones()
    if phones:
        conditions.append(ClientIdentity.kind.in_(PHONE_KINDS) & ClientIdentity.value.in_(phones))
    if identity.lid:
        conditions.append(
            (ClientIdentity.kind == ClientIdentityKind.LID) & (ClientIdentity.value == identity.lid)
        )
    if identity.bsuid:
        conditions.append(
            (ClientIdentity.kind == ClientIdentityKind.BSUID)
            & (ClientIdentity.value == identity.bsuid)
        )
    return or_(*conditions) if conditions else None


async def find_ids(
    db: AsyncSession, identity: Identity, company_id: uuid.UUID | None
) -> list[uuid.UUID]:
    """Return the ids of every client known this way (of one company, or of all: None).

    Identity matches come first, then `clients.phone` matches; each group oldest first.
    """
    match = _identity_match(identity)
    if match is None:
        return []
    by_identity = select(ClientIdentity.client_id).where(match)
    if company_id is not None:
        by_identity = by_identity.where(ClientIdentity.company_id == company_id)
    found = sorted(set((await db.scalars(by_identity)).all()))
    phones = identity.phones()
    if phones:
        by_phone = select(Client.id).where(Client.phone.in_(phones))
        if company_id is not None:
            by_phone = by_phone.where(Client.company_id == company_id)
        found += sorted(set((await db.scalars(by_phone)).all()) - set(found))
    return found


async def find(db: AsyncSession, company_id: uuid.UUID, identity: Identity) -> Client | None:
    """Return the company's client known this way, if any."""
    ids = await find_ids(db, identity, company_id)
    return await db.get(Client, ids[0]) if ids else None


async def attach(
    db: AsyncSession, client: Client, identity: Identity
) -> set[tuple[ClientIdentityKind, str]]:
    """Record the identities of `identity` that no client of the company holds yet.

    Returns the ones `client` holds afterwards (an identity another client holds stays
    that client's).
    """
    wanted = identity.wanted()
    if not wanted:
        return set()
    rows = await db.execute(
        select(ClientIdentity.kind, ClientIdentity.value, ClientIdentity.client_id).where(
            ClientIdentity.company_id == client.company_id,
            ClientIdentity.value.in_([value for _, value in wanted]),
        )
    )
    owner = {(kind, value): client_id for kind, value, client_id in rows.all()}
    for kind, value in wanted:
        if (kind, value) not in owner:
            db.add(
                ClientIdentity(
                    company_id=client.company_id, client_id=client.id, kind=kind, value=value
                )
            )
    return {row for row in wanted if owner.get(row, client.id) == client.id}


def wa_user_id(phone: str) -> str:
    """Return WhatsApp's user id of a canonical E.164 phone."""
    return f"{phone[1:]}@s.whatsapp.net"


async def find_or_create(
    db: AsyncSession,
    company_id: uuid.UUID,
    identity: Identity,
    *,
    profile_name: str | None = None,
) -> tuple[Client, bool]:
    """Return the company's client known this way, creating it if none; and whether it is new.

    A found client gets what it lacked (phone, LID) and a newer `profile_name`; either
    way the client ends up holding every identity of `identity` nobody else holds.
    """
    client = await find(db, company_id, identity)
    if client is None:
        client = Client(
            company_id=company_id,
            phone=identity.phone,
            wa_user_id=wa_user_id(identity.phone) if identity.phone else None,
            lid=identity.lid,
            profile_name=profile_name,
        )
        db.add(client)
        await db.flush()
        await attach(db, client, identity)
        return client, True
    if profile_name and profile_name != client.profile_name:
        client.profile_name = profile_name
    held = await attach(db, client, identity)
    if identity.lid and not client.lid and (ClientIdentityKind.LID, identity.lid) in held:
        client.lid = identity.lid
    if identity.phone and not client.phone and (ClientIdentityKind.PHONE, identity.phone) in held:
        client.phone = identity.phone
    return client, False
