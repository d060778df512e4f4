"""Lots expire on their day, and only what FIFO consumption left of them expires."""

from __future__ import annotations

from datetime import date, timedelta

DAY = date(2025, 3, 10)  # the day the conftest clock is frozen on
D = timedelta(days=1)


def test_lots_expire_on_their_day_as_one_entry_per_customer(shop, database_url):
    shop_id = shop.jsonl("shop")
    ana = shop.customer("ana@example.com", [(100, DAY), (25, DAY), (50, DAY + 5 * D)])
    bob = shop.customer("bob@example.com", [(40, DAY + D)])
    eva = shop.customer("eva@example.com", [(70, None)])
    shop.forget_outbox()

    before = shop.run(DAY - D)
    assert before.customers_expired == 0
    assert shop.balance(ana) == 175, "a lot is still spendable the day before it expires"

    report = shop.run(DAY)
    assert (report.customers_expired, report.points_expired) == (1, 125)
    # Two lots due the same day make one entry, dated that day.
    assert shop.expirations() == [(ana, -125, "expiration:2025-03-10", "2025-03-10")]
    assert shop.balance(ana) == 50
    assert shop.lots(ana) == [(DAY, 0), (DAY, 0), (DAY + 5 * D, 50)]
    assert shop.balance(bob) == 40
    # The platforms hear of it: a contact update and a credit-changed event, reason expiration.
    assert shop.contact_updates(shop_id) == [ana]
    changed = shop.outbox(event_type="credit-changed", integration_id=shop_id)
    assert [(m.customer_id, m.payload) for m in changed] == [
        (ana, {"points": -125, "balance": 50, "reason": "expiration"})
    ]

    shop.run(DAY + D)
    assert shop.expirations(bob) == [(bob, -40, "expiration:2025-03-11", "2025-03-11")]
    assert shop.balance(bob) == 0

    # Running a day again (by hand, or a second scheduler) expires nothing twice.
    again = shop.run(DAY)
    assert again.customers_expired == 0
    assert len(shop.expirations()) == 2
    assert shop.balance(ana) == 50

    # Points without an expiry date never expire.
    shop.run(DAY + 400 * D)
    assert shop.balance(eva) == 70
    assert shop.balance(ana) == 0


def test_debits_take_the_earliest_lot_first_and_expiry_takes_only_the_rest(shop, database_url):
    # 100 due today, 80 in three days; spending 120 empties today's lot and takes 20 of the next.
    spent_early = shop.customer("cyril@example.com", [(100, DAY), (80, DAY + 3 * D)], debit=120)
    # Credited in the other order: FIFO follows the expiry date, not the order of credits.
    by_due_date = shop.customer("dana@example.com", [(100, DAY + 3 * D), (100, DAY)], debit=50)
    # Points that never expire are spent last.
    undated = shop.customer("emil@example.com", [(70, None), (30, DAY)], debit=20)

    assert shop.lots(spent_early) == [(DAY, 0), (DAY + 3 * D, 60)]
    assert shop.lots(by_due_date) == [(DAY + 3 * D, 100), (DAY, 50)]
    assert shop.lots(undated) == [(None, 70), (DAY, 10)]

    report = shop.run(DAY)
    assert report.points_expired == 60
    assert shop.expirations(spent_early) == [], "the debit already used up today's lot"
    assert shop.balance(spent_early) == 60
    assert shop.expirations(by_due_date) == [
        (by_due_date, -50, "expiration:2025-03-10", "2025-03-10")
    ]
    assert shop.balance(by_due_date) == 100
    assert shop.expirations(undated) == [(undated, -10, "expiration:2025-03-10", "2025-03-10")]
    assert shop.balance(undated) == 70

    shop.run(DAY + 3 * D)
    # Only what the debit left of the later lot expires: 60, not 80.
    assert shop.expirations(spent_early)[-1][:2] == (spent_early, -60)
    assert shop.balance(spent_early) == 0
    assert shop.balance(by_due_date) == 0
    assert shop.balance(undated) == 70
