"""The nightly expiry and live transactions on the same customers at the same moment: the
expiry takes what the lots hold once the live change has committed, never a stale figure."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from pointbridge.loyalty.expiry import DayReport
from pointbridge.loyalty.rules import expiration_reference

from .conftest import DAY, Shop
from .test_expiry_concurrent import _wait_for_blocked_backends

D = timedelta(days=1)


def _expire_while(shop: Shop, live_points: int, customer_id: int) -> DayReport:
    """Run the day's expiry while a live transaction of ``live_points`` holds the customer,
    and commit that transaction only once the expiry waits on it (PostgreSQL; SQLite's
    writers take turns whatever the order)."""
    reports: list[DayReport] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            reports.append(shop.run(DAY))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    with shop.db.transaction() as session:
        shop.services.loyalty.post_transaction(
            session, customer_id, live_points, "order" if live_points > 0 else "reward"
        )
        thread.start()
        if shop.db.is_postgres:
            _wait_for_blocked_backends(shop.db, 1)
    thread.join(timeout=120)
    assert errors == []
    return reports[0]


@pytest.mark.parametrize("live_points", [40, -30], ids=["credit", "debit"])
def test_a_live_change_during_the_expiry_is_kept_and_the_expiry_takes_the_lots_as_they_are(
    shop: Shop, live_points: int
):
    shop.jsonl("shop")
    customer = shop.customer("jana@example.com", [(100, DAY), (50, DAY + 9 * D)])

    report = _expire_while(shop, live_points, customer)

    # A debit takes from the lot due first, so the expiry finds 70 there; a credit is a lot
    # of its own that expires later (or never).
    expired = 100 if live_points > 0 else 70
    assert report.points_expired == expired
    assert shop.expirations(customer) == [
        (customer, -expired, expiration_reference(DAY), DAY.isoformat())
    ]
    assert shop.balance(customer) == 150 + live_points - expired
    assert sum(remaining for _, remaining in shop.lots(customer)) == shop.balance(customer)


def test_a_set_of_debits_skips_whom_the_balance_cannot_cover_and_takes_earliest_lots_first(
    shop: Shop,
):
    shop.jsonl("shop")
    rich = shop.customer("rich@example.com", [(30, None), (20, DAY + 9 * D), (10, DAY + 2 * D)])
    poor = shop.customer("poor@example.com", [(5, DAY)])
    shop.forget_outbox()

    with shop.db.transaction() as session:
        balances = shop.services.loyalty.post_debits(
            session, {rich: 25, poor: 6}, "reward", reference="night-1", now=datetime.now(UTC)
        )
    with shop.db.transaction() as session:
        again = shop.services.loyalty.post_debits(
            session, {rich: 25}, "reward", reference="night-1", now=datetime.now(UTC)
        )

    assert balances == {rich: 35}
    assert again == {}, "a reference used before debits nobody twice"
    assert shop.balance(rich) == 35 and shop.balance(poor) == 5
    # 10 from the lot due first, 15 of the next one; the lot that never expires goes last.
    assert shop.lots(rich) == [(None, 30), (DAY + 9 * D, 5), (DAY + 2 * D, 0)]
    assert shop.lots(poor) == [(DAY, 5)]
    changed = shop.outbox(event_type="credit-changed")
    assert [(m.customer_id, m.payload) for m in changed] == [
        (rich, {"points": -25, "balance": 35, "reason": "reward"})
    ]
    assert shop.contact_updates() == [rich]
