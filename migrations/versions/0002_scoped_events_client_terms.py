"""scoped events; client_terms (indexed accent-insensitive name search)

`events.scoped` marks an event about a ticket or a conversation: the ticket rule of
zapd.kernel.visibility applies to it (existing rows stay unscoped, as they were sent).
`client_terms` holds the folded words of every client's names, back-filled here.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06 13:30:00
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.text import fold

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WORD = re.compile(r"[0-9a-z]+")
_BATCH = 1000


def _terms(*names: str | None) -> set[str]:
    out: set[str] = set()
    for name in names:
        if name:
            out.update(w[:64] for w in _WORD.findall(fold(name)))
    return out


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("scoped", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    terms = op.create_table(
        "client_terms",
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("term", sa.String(length=64), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_client_terms_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_client_terms_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("client_id", "term", name=op.f("pk_client_terms")),
    )
    with op.batch_alter_table("client_terms", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_client_terms_company_id_term"), ["company_id", "term"], unique=False
        )
    # Back-fill from the existing names, a batch at a time.
    conn = op.get_bind()
    clients = sa.table(
        "clients",
        sa.column("id", sa.Uuid()),
        sa.column("company_id", sa.Uuid()),
        sa.column("name", sa.String()),
        sa.column("profile_name", sa.String()),
    )
    rows = conn.execute(
        sa.select(clients.c.id, clients.c.company_id, clients.c.name, clients.c.profile_name)
    ).all()
    pending: list[dict[str, object]] = []
    for client_id, company_id, name, profile_name in rows:
        for term in sorted(_terms(name, profile_name)):
            pending.append({"client_id": client_id, "company_id": company_id, "term": term})
        if len(pending) >= _BATCH:
            op.bulk_insert(terms, pending)
            pending = []
    if pending:
        op.bulk_insert(terms, pending)


def downgrade() -> None:
    with op.batch_alter_table("client_terms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_client_terms_company_id_term"))
    op.drop_table("client_terms")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("scoped")
