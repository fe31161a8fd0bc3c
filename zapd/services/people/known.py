"""Client identities read once for a batch of senders: `identity.find_or_create` without queries.

The inbound pipeline processes a batch of events in one transaction; `Known.read`
loads, in two queries (a third when an identity's owner lacks the phone), every
identity row and `clients.phone` match that any sender of the batch could hit, with
those clients. `Known.find_or_create` then applies the
rules of `zapd.services.people.identity` (identity matches first, then phone matches,
oldest first; record every identity nobody holds; fill the phone / LID the client
lacks) on that snapshot, keeping it up to date with what it writes.

Invariants: a sender the snapshot does not cover (a value not read) goes to
`identity.find_or_create` unchanged. The snapshot is only valid inside the transaction
that read it, and only while every identity write of that transaction goes through it:
whoever writes identities otherwise, or rolls back a savepoint that wrote some, must
drop it (the caller does). A stale snapshot can at worst try to insert an identity a
client already holds, which the unique index refuses (a retried race, never a wrong
owner).

With `held` (a `zapd.kernel.held.Held` of the transaction), the clients and identity
rows (plain rows: nothing changes them afterwards) it creates are held there for one
insert at the batch's end instead of a flush each; the holder inserts them before
anything that could look for them by query (a sender the snapshot does not cover is
looked up only after they are inserted).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.enums import ClientIdentityKind
from zapd.db.models import Client, ClientIdentity
from zapd.db.types import new_id
from zapd.kernel.held import Held
from zapd.kernel.txsql import TxStatement, rows_all
from zapd.services.people import identity
from zapd.services.people.identity import PHONE_KINDS, Identity

# Built once (bound parameters; lists expand at execution).
# Run past the session's layers on SQLite (`zapd.kernel.txsql`): read before anything
# the batch writes, so nothing pending is skipped by the missing autoflush.
_OWNERS = TxStatement(
    select(ClientIdentity.kind, ClientIdentity.value, ClientIdentity.client_id).where(
        ClientIdentity.company_id == bindparam("company_id"),
        ClientIdentity.value.in_(bindparam("values", expanding=True)),
    )
)
_BY_PHONE = TxStatement(
    select(Client).where(
        Client.company_id == bindparam("company_id"),
        Client.phone.in_(bindparam("phones", expanding=True)),
    )
)
_CLIENTS = TxStatement(select(Client).where(Client.id.in_(bindparam("ids", expanding=True))))
_KINDS = tuple(ClientIdentityKind)  # iterating the enum class itself costs a call per member


@dataclass
class Known:
    """A company's identities and phone matches for some senders, as one transaction saw them."""

    company_id: uuid.UUID
    owners: dict[tuple[ClientIdentityKind, str], uuid.UUID] = field(default_factory=dict)
    values: set[str] = field(default_factory=set)  # every value whose rows were read
    by_phone: dict[str, set[uuid.UUID]] = field(default_factory=dict)
    phones: set[str] = field(default_factory=set)  # every phone whose clients were read
    # The clients read or created (held here: the session's identity map is weak).
    clients: dict[uuid.UUID, Client] = field(default_factory=dict)
    # Set by the holder: new clients and identity rows wait there (module docstring).
    held: Held | None = None

    @classmethod
    async def read(
        cls, db: AsyncSession, company_id: uuid.UUID, senders: Iterable[Identity]
    ) -> Known:
        """Read what `senders` may match (identity rows of any kind, clients by phone)."""
        known, reads = cls.prepare(company_id, senders)
        known.absorb(await rows_all(db, reads))
        more = known.owners_read()
        if more is not None:
            known.absorb_owners(await more[0].rows(db, more[1]))
        return known

    @classmethod
    def prepare(
        cls, company_id: uuid.UUID, senders: Iterable[Identity]
    ) -> tuple[Known, list[tuple[TxStatement, dict[str, Any]]]]:
        """An empty snapshot for `senders`, and the reads that fill it (`absorb` their rows).

        For a caller that runs them with reads of its own (`zapd.kernel.txsql.rows_all`).
        """
        known = cls(company_id)
        senders = list(senders)
        known.values = {v for s in senders for _, v in s.wanted()}
        known.phones = {p for s in senders for p in s.phones()}
        reads: list[tuple[TxStatement, dict[str, Any]]] = []
        if known.values:
            reads.append((_OWNERS, {"company_id": company_id, "values": sorted(known.values)}))
        if known.phones:
            # The clients themselves at once: a client matched by phone is usually the
            # owner of that phone's identity too, so `owners_read` rarely has any.
            reads.append((_BY_PHONE, {"company_id": company_id, "phones": sorted(known.phones)}))
        return known, reads

    def absorb(self, results: list[list[Any]]) -> None:
        """Take the rows of `prepare`'s reads, in their order."""
        found = iter(results)
        if self.values:
            self.owners = {(kind, value): cid for kind, value, cid in next(found)}
        if self.phones:
            for client in next(found):
                self.clients[client.id] = client
                if client.phone is not None:
                    self.by_phone.setdefault(client.phone, set()).add(client.id)

    def owners_read(self) -> tuple[TxStatement, dict[str, Any]] | None:
        """The read of identity owners not among the clients read by phone (None: none)."""
        missing = set(self.owners.values()) - set(self.clients)
        return (_CLIENTS, {"ids": sorted(missing)}) if missing else None

    def absorb_owners(self, clients: list[Client]) -> None:
        """Take the clients `owners_read` found."""
        for client in clients:
            self.clients[client.id] = client

    def client_ids(self) -> set[uuid.UUID]:
        """Every client the snapshot names (identity owners, phone matches)."""
        return set(self.owners.values()) | {c for s in self.by_phone.values() for c in s}

    def covers(self, sender: Identity) -> bool:
        """Tell whether every row `sender` may match was read."""
        return all(v in self.values for _, v in sender.wanted()) and all(
            p in self.phones for p in sender.phones()
        )

    def find_ids(self, sender: Identity) -> list[uuid.UUID]:
        """`identity.find_ids` on the snapshot (the sender must be covered)."""
        phones = sender.phones()
        keys = [(kind, p) for p in phones for kind in PHONE_KINDS]
        if sender.lid:
            keys.append((ClientIdentityKind.LID, sender.lid))
        if sender.bsuid:
            keys.append((ClientIdentityKind.BSUID, sender.bsuid))
        found = sorted({self.owners[k] for k in keys if k in self.owners})
        by_phone = {c for p in phones for c in self.by_phone.get(p, ())}
        return found + sorted(by_phone - set(found))

    def _attach(
        self, db: AsyncSession, client: Client, sender: Identity
    ) -> set[tuple[ClientIdentityKind, str]]:
        """`identity.attach` on the snapshot, recording the rows it adds."""
        wanted = sender.wanted()
        owner = {
            (kind, value): self.owners[(kind, value)]
            for kind in _KINDS
            for _, value in wanted
            if (kind, value) in self.owners
        }
        for kind, value in wanted:
            if (kind, value) not in owner:
                if self.held is not None:  # a plain row: nothing changes it afterwards
                    self.held.add_row(
                        ClientIdentity,
                        {
                            "company_id": client.company_id,
                            "client_id": client.id,
                            "kind": kind,
                            "value": value,
                        },
                    )
                else:
                    db.add(
                        ClientIdentity(
                            company_id=client.company_id,
                            client_id=client.id,
                            kind=kind,
                            value=value,
                        )
                    )
                self.owners[(kind, value)] = client.id
        return {row for row in wanted if owner.get(row, client.id) == client.id}

    async def find_or_create(
        self, db: AsyncSession, sender: Identity, *, profile_name: str | None = None
    ) -> tuple[Client, bool]:
        """`identity.find_or_create`, from the snapshot when it covers the sender."""
        if not self.covers(sender):
            if self.held is not None:
                await self.held.insert(db)  # the queries below must see them
            return await identity.find_or_create(
                db, self.company_id, sender, profile_name=profile_name
            )
        ids = self.find_ids(sender)
        client = (self.clients.get(ids[0]) or await db.get(Client, ids[0])) if ids else None
        if client is None:
            client = Client(
                id=new_id(),
                company_id=self.company_id,
                phone=sender.phone,
                wa_user_id=identity.wa_user_id(sender.phone) if sender.phone else None,
                lid=sender.lid,
                profile_name=profile_name,
            )
            if self.held is not None:
                self.held.add(client)
            else:
                db.add(client)
                await db.flush()
            self.clients[client.id] = client
            if sender.phone:
                self.by_phone.setdefault(sender.phone, set()).add(client.id)
            self._attach(db, client, sender)
            return client, True
        if profile_name and profile_name != client.profile_name:
            client.profile_name = profile_name
        held = self._attach(db, client, sender)
        if sender.lid and not client.lid and (ClientIdentityKind.LID, sender.lid) in held:
            client.lid = sender.lid
        if sender.phone and not client.phone and (ClientIdentityKind.PHONE, sender.phone) in held:
            client.phone = sender.phone
        return client, False
