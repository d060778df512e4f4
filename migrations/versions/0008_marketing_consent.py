"""customer.marketing_consent: whether the customer agreed to marketing e-mail

Revision ID: 0008
Revises: 0007

Customers who exist already get false: consent is never presumed, so none of them is
subscribed anywhere by pointbridge until the shop sends their consent.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN with a constant default: no copy of the table on either database.
    op.add_column(
        "customer",
        sa.Column("marketing_consent", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("customer") as batch:
        batch.drop_column("marketing_consent")
