"""customer.referrals_high: the highest referral count a customer has had

Revision ID: 0011
Revises: 0010

referral-completed goes out only for a count above it, so lowering a customer's count and
raising it again announces no referral twice. Customers who exist already start at their
current count: what they have was announced, or came before the event existed.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN with a constant default: no copy of the table on either database.
    op.add_column(
        "customer",
        sa.Column("referrals_high", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )
    customer = sa.table(
        "customer", sa.column("referrals", sa.Integer()), sa.column("referrals_high", sa.Integer())
    )
    op.execute(
        customer.update()
        .where(customer.c.referrals > 0)
        .values(referrals_high=customer.c.referrals)
    )


def downgrade() -> None:
    with op.batch_alter_table("customer") as batch:
        batch.drop_column("referrals_high")
