"""outbox: partial indexes over pending and dead rows

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _where(status: str) -> dict[str, sa.TextClause]:
    condition = sa.text(f"status = '{status}'")
    return {"sqlite_where": condition, "postgresql_where": condition}


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_due")
        batch_op.drop_index("ix_outbox_customer")
        batch_op.create_index(
            "ix_outbox_due", ["integration_id", "next_attempt_at", "id"], **_where("pending")
        )
        batch_op.create_index(
            "ix_outbox_customer", ["integration_id", "customer_id", "id"], **_where("pending")
        )
        batch_op.create_index("ix_outbox_dead", ["integration_id", "id"], **_where("dead"))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_dead")
        batch_op.drop_index("ix_outbox_customer")
        batch_op.drop_index("ix_outbox_due")
        batch_op.create_index(
            "ix_outbox_customer", ["integration_id", "customer_id", "status", "id"], unique=False
        )
        batch_op.create_index("ix_outbox_due", ["status", "next_attempt_at", "id"], unique=False)
