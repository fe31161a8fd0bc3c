"""indexes for deletes: the quotes of a message, the tickets of a chat

Deleting a parent row makes the database find its children: `messages.quoted_message_id`
(ON DELETE SET NULL) for every message deleted, `tickets.chat_id` for every chat. Neither
had an index, so each deleted row scanned the child table: the retention purge, a
client's erasure and a company's removal went quadratic in the history (a purge of 10k
messages out of 1M: 10k scans of 1M rows). The quotes' index is partial (most messages
quote nothing), so inbound inserts do not pay for it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 18:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_QUOTES = "quoted_message_id IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_messages_quoted_message_id"),
            ["quoted_message_id"],
            unique=False,
            sqlite_where=sa.text(_QUOTES),
            postgresql_where=sa.text(_QUOTES),
        )
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tickets_chat_id"), ["chat_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tickets_chat_id"))
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_quoted_message_id"))
