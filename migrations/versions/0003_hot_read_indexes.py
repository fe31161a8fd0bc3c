"""indexes for the hot reads: identities by value, clients listed by id, queues by id

`client_identities (company_id, value)`: the identity lookups ask for values of any kind
(`value IN (...)`); the unique `(company_id, kind, value)` cannot serve them without the
kind, so they scanned every identity of the company.
`clients (company_id, id)`: the clients listing pages by id within a company; without
it, every page sorted all of the company's clients.
`tickets (company_id, department_id, status, id)` and `(company_id, assignee_id, status,
id)` replace the same indexes without `id`: a queue ("pending in Laboratório", "mine,
open") is read newest first a page at a time, straight from the index, instead of
sorting the whole queue (or, on SQLite, walking every ticket of the company by id until
a page of the queue turns up).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 16:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_QUEUES = (("department_id", "status"), ("assignee_id", "status"))


def upgrade() -> None:
    with op.batch_alter_table("client_identities", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_client_identities_company_id_value"),
            ["company_id", "value"],
            unique=False,
        )
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_clients_company_id_id"), ["company_id", "id"], unique=False
        )
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        for by, status in _QUEUES:
            batch_op.drop_index(batch_op.f(f"ix_tickets_company_id_{by}_{status}"))
            batch_op.create_index(
                batch_op.f(f"ix_tickets_company_id_{by}_{status}_id"),
                ["company_id", by, status, "id"],
                unique=False,
            )


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        for by, status in _QUEUES:
            batch_op.drop_index(batch_op.f(f"ix_tickets_company_id_{by}_{status}_id"))
            batch_op.create_index(
                batch_op.f(f"ix_tickets_company_id_{by}_{status}"),
                ["company_id", by, status],
                unique=False,
            )
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clients_company_id_id"))
    with op.batch_alter_table("client_identities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_client_identities_company_id_value"))
