"""Purging delivered rows never makes an expiry notice go out twice."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from pointbridge.delivery import admin as outbox_admin
from pointbridge.loyalty.expiry import Expiry
from pointbridge.services import Services
from pointbridge.storage.models import Customer, OutboxMessage


def _notices(services: Services, status: str) -> int:
    with services.db.transaction() as session:
        return session.scalar(
            select(func.count(OutboxMessage.id)).where(
                OutboxMessage.event_type == "credit-expires", OutboxMessage.status == status
            )
        )


def test_a_purge_keeps_the_record_of_sent_notices(services: Services, tmp_path) -> None:
    with services.db.transaction() as session:
        services.integrations.add(
            session, "dry", "jsonl", {"path": str(tmp_path / "o.jsonl"), "expiry_notice_days": 7}
        )
    services.integrations.install(services.db, "dry")
    today = date.today()
    with services.db.transaction() as session:
        customer = services.loyalty.create_customer(session, {"email": "jana@example.com"})
        services.loyalty.post_transaction(
            session,
            session.get(Customer, customer.id),
            50,
            "order",
            expires_on=today + timedelta(days=5),
        )
    expiry = Expiry(services.db, services.loyalty)
    expiry.run_day(today)
    services.worker().drain()
    assert _notices(services, "delivered") == 1

    purged = outbox_admin.purge(services.db, datetime.now(UTC) + timedelta(days=1))
    assert purged == 3  # the contact updates and the credit-changed event; not the notice

    expiry.run_day(today + timedelta(days=1))
    assert _notices(services, "pending") == 0, "the notice was queued a second time"
    assert _notices(services, "delivered") == 1
