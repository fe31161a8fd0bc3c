"""outbox.chat_id: a send waits for its chat's older sends with one index seek

The worker claims a row only when no older row of the same chat is still active. That
was asked through the messages table: every message of the chat (its whole history,
by `(chat_id, created_at)`) looked up in the outbox, for every due row the claim
considered, and a claim that finds nothing considers the whole queue. A backlog
(a session back online, a campaign) over long-lived chats made each claim cost
queue × history. The row now carries its message's chat (which never changes), and
`(chat_id, state, message_id)` answers "an older active row of this chat?" with one
seek; it also serves a chat's deletion (ON DELETE CASCADE). Existing rows are filled
from their messages.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 18:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chat_id", sa.Uuid(), nullable=True))
    op.execute(
        "UPDATE outbox SET chat_id = "
        "(SELECT messages.chat_id FROM messages WHERE messages.id = outbox.message_id)"
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.alter_column("chat_id", existing_type=sa.Uuid(), nullable=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_outbox_chat_id_chats"), "chats", ["chat_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.create_index(
            batch_op.f("ix_outbox_chat_id_state_message_id"),
            ["chat_id", "state", "message_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_chat_id_state_message_id"))
        batch_op.drop_constraint(batch_op.f("fk_outbox_chat_id_chats"), type_="foreignkey")
        batch_op.drop_column("chat_id")
