"""outbox: a partial index over due contact updates, which are claimed before events

Revision ID: 0010
Revises: 0009

The worker claims contact updates first and events after: claiming the oldest due rows of both
kinds together held no contact update while thousands of due expiry notices were ahead of it.
This index lets the contact claim skip the events.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

PENDING_CONTACTS = sa.text("status = 'pending' AND kind = 'contact'")


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_due_contact",
            ["integration_id", "next_attempt_at", "id"],
            sqlite_where=PENDING_CONTACTS,
            postgresql_where=PENDING_CONTACTS,
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_due_contact")
