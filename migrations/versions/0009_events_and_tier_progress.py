"""Tier progress on customers; reminders, event switches and reward thresholds on integrations

Revision ID: 0009
Revises: 0008

customer.tier_expires_at and customer.points_to_next_tier are what the shop's tier data says
(empty until it says it). integration.expiry_reminders holds every expiry reminder's days ahead
(expiry_notice_days stays the first, the one older surfaces show); disabled_events the event
types an integration is not sent; reward_thresholds the balances that send reward-available.
Existing integrations keep their single reminder: it is copied into the list.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs of nullable columns: no copy of either table on either database.
    op.add_column("customer", sa.Column("tier_expires_at", sa.Date(), nullable=True))
    op.add_column("customer", sa.Column("points_to_next_tier", sa.BigInteger(), nullable=True))
    for name in ("expiry_reminders", "disabled_events", "reward_thresholds"):
        op.add_column("integration", sa.Column(name, sa.JSON(), nullable=True))
    integration = sa.table(
        "integration",
        sa.column("expiry_notice_days", sa.Integer()),
        sa.column("expiry_reminders", sa.JSON()),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(integration.c.expiry_notice_days)
        .where(integration.c.expiry_notice_days.is_not(None))
        .distinct()
    ).scalars()
    for days in list(rows):
        bind.execute(
            integration.update()
            .where(integration.c.expiry_notice_days == days)
            .values(expiry_reminders=[days])
        )


def downgrade() -> None:
    with op.batch_alter_table("integration") as batch:
        for name in ("expiry_reminders", "disabled_events", "reward_thresholds"):
            batch.drop_column(name)
    with op.batch_alter_table("customer") as batch:
        batch.drop_column("points_to_next_tier")
        batch.drop_column("tier_expires_at")
