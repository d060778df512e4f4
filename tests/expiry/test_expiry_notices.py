"""Pre-expiry notices: N days ahead, once per customer and date, only where they apply."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import update

from pointbridge.integrations import IntegrationError
from pointbridge.loyalty.expiry import Expiry
from pointbridge.storage.models import IntegrationRow

DAY = date(2025, 3, 10)  # the day the conftest clock is frozen on
D = timedelta(days=1)


def test_a_notice_fires_n_days_ahead_and_only_once(shop, database_url):
    shop_id = shop.jsonl("shop", notice_days=7)
    ana = shop.customer(
        "ana@example.com", [(100, DAY + 7 * D), (20, DAY + 7 * D), (30, DAY + 8 * D)]
    )
    bob = shop.customer("bob@example.com", [(50, DAY + 9 * D)])

    assert shop.run(DAY - D).notices == {"shop": 0}, "eight days ahead is too early"

    report = shop.run(DAY)
    assert report.notices == {"shop": 1}
    # Both lots due on the same date make one notice of their sum.
    assert shop.notices() == [(shop_id, ana, 120, "2025-03-17")]
    [notice] = shop.outbox(event_type="credit-expires")
    assert notice.dedupe_key == f"credit-expires:{shop_id}:{ana}:2025-03-17"

    shop.run(DAY + D)
    shop.run(DAY + 2 * D)
    assert shop.notices() == [
        (shop_id, ana, 120, "2025-03-17"),
        (shop_id, ana, 30, "2025-03-18"),
        (shop_id, bob, 50, "2025-03-19"),
    ]

    shop.deliver()
    # The following days' runs, and a day run again after delivery, add nothing.
    for day in (DAY, DAY + 3 * D, DAY + 4 * D, DAY + 5 * D, DAY + 6 * D):
        assert shop.run(day).notices == {"shop": 0}
    assert len(shop.notices()) == 3
    shop.deliver()

    sent = [line for line in shop.jsonl_lines("shop") if line.get("type") == "credit-expires"]
    # Delivery keeps order per customer only, hence sorted.
    assert sorted((e["email"], e["data"]["expires_on"], e["data"]["points"]) for e in sent) == [
        ("ana@example.com", "2025-03-17", 120),
        ("ana@example.com", "2025-03-18", 30),
        ("bob@example.com", "2025-03-19", 50),
    ]


def test_each_integration_has_its_own_horizon_and_do_not_send_sends_nothing(shop, database_url):
    week = shop.jsonl("week", notice_days=7)
    three = shop.jsonl("three", notice_days=3)
    silent = shop.jsonl("silent", notice_days="Do not send")
    ana = shop.customer("ana@example.com", [(10, DAY), (30, DAY + 3 * D), (70, DAY + 7 * D)])
    shop.forget_outbox()

    report = shop.run(DAY)

    assert report.notices == {"week": 2, "three": 1}
    assert shop.notices(week) == [(week, ana, 30, "2025-03-13"), (week, ana, 70, "2025-03-17")]
    assert shop.notices(three) == [(three, ana, 30, "2025-03-13")]
    assert shop.notices(silent) == []
    # "Do not send" is about notices only: the expiry itself still reaches that platform.
    assert [m.payload["reason"] for m in shop.outbox(event_type="credit-changed")] == [
        "expiration"
    ] * 3
    assert shop.contact_updates(silent) == [ana]


def test_a_platform_without_events_gets_contacts_but_no_notices(shop, contacts_only, database_url):
    with (
        shop.db.transaction() as session,
        pytest.raises(IntegrationError, match="no events in pointbridge"),
    ):
        shop.services.integrations.add(session, "smile", "contacts-only", {"expiry_notice_days": 7})
    with shop.db.transaction() as session:
        shop.services.integrations.add(session, "smile", "contacts-only", {})
    shop.services.integrations.install(shop.db, "smile")
    # A row that carries N anyway (set before its plugin lost events, or by hand in the database)
    # must still send nothing: the platform has nowhere to put an event.
    with shop.db.transaction() as session:
        session.execute(
            update(IntegrationRow)
            .where(IntegrationRow.name == "smile")
            .values(expiry_notice_days=7)
        )
    shop.jsonl("shop", notice_days=7)
    ana = shop.customer("ana@example.com", [(40, DAY), (60, DAY + 7 * D)])
    shop.deliver()
    contacts_only.contacts.clear()

    report = shop.run(DAY)
    shop.deliver()

    assert "smile" not in report.notices, report.summary()
    assert report.notices == {"shop": 1}
    assert contacts_only.events == []
    # It still hears of the expiry through the contact fields.
    [contact] = contacts_only.contacts
    assert (contact.customer_id, contact.points) == (ana, 60)
    assert (contact.next_expiration_date, contact.next_expiration_points) == (DAY + 7 * D, 60)


def test_notices_page_through_every_customer_and_date_exactly_once(shop, database_url):
    shop_id = shop.jsonl("shop", notice_days=7)
    expected = []
    for n in range(7):
        dates = [DAY + (1 + (n + k) % 7) * D for k in range(3)]
        customer = shop.customer(f"c{n}@example.com", [(n + 1, d) for d in dates])
        expected += [(shop_id, customer, n + 1, d.isoformat()) for d in dates]

    report = Expiry(shop.db, shop.services.loyalty, page_size=2).run_day(DAY)

    assert report.notices == {"shop": 21}
    assert sorted(shop.notices()) == sorted(expected)


def test_an_integration_that_switched_reminders_off_is_promised_none(shop, database_url):
    """disabled_events=credit-expires sends no reminder, so the run's report (what `expiry run`
    and its --dry-run print) counts none for it, while its points-expired still goes."""
    week = shop.jsonl("week", notice_days=7)
    quiet = shop.jsonl("quiet", notice_days=7)
    with shop.db.transaction() as session:
        row = shop.services.integrations.get(session, "quiet")
        shop.services.integrations.update(row, {"disabled_events": ["credit-expires"]})
    ana = shop.customer("ana@example.com", [(10, DAY), (70, DAY + 7 * D)])
    shop.forget_outbox()

    assert shop.run(DAY, dry_run=True).notices == {"week": 1}
    report = shop.run(DAY)

    assert report.notices == {"week": 1}, report.summary()
    assert shop.notices(quiet) == []
    assert shop.notices(week) == [(week, ana, 70, "2025-03-17")]
    assert [m.customer_id for m in shop.outbox(event_type="points-expired")] == [ana, ana]
