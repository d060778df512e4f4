"""An export page's snapshots are read on the driver's cursor, not through SQLAlchemy's result
processing: they must be the snapshots live delivery reads, value for value and type for type."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import update

from pointbridge.delivery.snapshots import contact_page, load_contacts
from pointbridge.services import Services
from pointbridge.storage.models import Customer

PREFIX = "https://shop.example/r/"


def test_a_page_holds_what_live_delivery_reads(services: Services) -> None:
    loyalty = services.loyalty
    with services.db.transaction() as session:
        full = loyalty.create_customer(
            session,
            {
                "email": "jana@example.com",
                "first_name": "Jana",
                "marketing_consent": True,
                "pin": "4321",
            },
        )
        bare = loyalty.create_customer(session, {"email": "petr@example.com"})
        loyalty.post_transaction(session, full, 40, "order", expires_on=date(2027, 3, 1))
        loyalty.post_transaction(session, full, 25, "order", expires_on=date(2027, 3, 1))
        loyalty.post_transaction(session, full, 10, "order", expires_on=date(2027, 6, 1))
        loyalty.post_transaction(session, full, -5, "order")
        session.execute(
            update(Customer)
            .where(Customer.id == full.id)
            .values(tier_id="gold", tier_expires_at=date(2027, 12, 31), points_to_next_tier=90)
        )
    with services.db.read() as session:
        page = contact_page(session, 0, 10, PREFIX)
        live = load_contacts(session, [full.id, bare.id], PREFIX)

    assert page == [live[full.id], live[bare.id]]
    jana, petr = page
    assert (jana.registered, jana.marketing_consent) == (False, True)
    assert type(jana.registered) is bool and type(petr.marketing_consent) is bool
    # The oldest lots went first to the debit: 60 of the 65 expiring in March are left.
    assert (jana.next_expiration_date, jana.next_expiration_points) == (date(2027, 3, 1), 60)
    assert (jana.lifetime_points, jana.points) == (75, 70)
    assert jana.tier_expires_at == date(2027, 12, 31)
    assert isinstance(jana.last_change_at, datetime) and jana.last_change_at.tzinfo == UTC
    assert jana.referral_link == f"{PREFIX}{jana.referral_code}"
    assert (petr.next_expiration_date, petr.last_change_at, petr.tier_expires_at) == (
        None,
        None,
        None,
    )
    # Keyset paging: the next page starts after the last id read.
    with services.db.read() as session:
        assert contact_page(session, jana.customer_id, 10, PREFIX) == [petr]
        assert contact_page(session, petr.customer_id, 10, PREFIX) == []
