"""money: a balance and a lot's remaining points can never go below zero

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.create_check_constraint("ck_customer_balance_not_negative", "balance >= 0")
    with op.batch_alter_table("point_lot", schema=None) as batch_op:
        batch_op.create_check_constraint(
            "ck_lot_remaining_in_range", "remaining >= 0 AND remaining <= points"
        )


def downgrade() -> None:
    with op.batch_alter_table("point_lot", schema=None) as batch_op:
        batch_op.drop_constraint("ck_lot_remaining_in_range", type_="check")
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.drop_constraint("ck_customer_balance_not_negative", type_="check")
