"""`zapd.services.tickets.queries.views`: a ticket whose client is gone is left out."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tests.zapd.db import factories as f
from zapd.services.tickets.queries import views


async def test_a_ticket_whose_client_went_meanwhile_is_left_out(db: AsyncSession) -> None:
    # On PostgreSQL each statement of a read sees its own snapshot: the client may be
    # erased (or its company deleted) between the ticket listing and the client read.
    c, s = await f.tenant(db)
    kept, gone = f.client(c, phone="+5511944440010"), f.client(c, phone="+5511944440011")
    db.add_all([kept, gone])
    await db.flush()
    first, second = f.ticket(c, s, kept, 1), f.ticket(c, s, gone, 2)
    db.add_all([first, second])
    await db.flush()
    listed = [first, second]
    await db.delete(second)
    await db.flush()  # apart: no declared relationship orders the two DELETEs, and the
    await db.delete(gone)  # client's first would cascade to the ticket (SAWarning)
    await db.flush()

    got = await views(db, listed)

    assert [v.ticket.id for v in got] == [first.id]
    assert got[0].client.id == kept.id
