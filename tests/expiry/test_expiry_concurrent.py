"""Two schedulers firing at once (two machines on one database) send nothing twice."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import date, timedelta

from sqlalchemy import func, select, text

from pointbridge.delivery.outbox import Outbox
from pointbridge.loyalty.expiry import DayReport, Expiry
from pointbridge.loyalty.service import Loyalty
from pointbridge.storage.db import Database
from pointbridge.storage.models import Customer, JobRun

DAY = date(2025, 3, 10)  # the day the conftest clock is frozen on
D = timedelta(days=1)
CUSTOMERS = 60


def _wait_for_blocked_backends(db: Database, count: int) -> None:
    """Until ``count`` other PostgreSQL sessions wait on a lock (so both runs truly overlap)."""
    deadline = time.monotonic() + 30
    with db.engine.connect() as connection:
        while time.monotonic() < deadline:
            waiting = connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
            if waiting >= count:
                return
            # pg_stat_activity is a snapshot taken once per transaction: end it to look again.
            connection.rollback()
            time.sleep(0.02)
    raise AssertionError(f"{count} runs never waited on the held lock")


def test_two_runs_of_the_same_day_at_once_expire_and_notify_once(shop, database_url):
    shop_id = shop.jsonl("shop", notice_days=7)
    customers = [
        shop.customer(f"c{n}@example.com", [(10 + n, DAY), (5, DAY + 7 * D)])
        for n in range(CUSTOMERS)
    ]
    shop.forget_outbox()

    # Each run has its own engine, as two machines would; small pages make them interleave.
    engines = [Database(database_url) for _ in range(2)]
    reports: list[DayReport] = []
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def run(db: Database) -> None:
        try:
            start.wait()
            loyalty = Loyalty(shop.services.settings, Outbox(shop.services.host))
            reports.append(Expiry(db, loyalty, page_size=7).run_day(DAY))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(db,)) for db in engines]
    for thread in threads:
        thread.start()
    # Hold every customer row so both runs start, block on the same rows, then race for them.
    with shop.db.transaction() as session:
        session.execute(select(Customer.id).with_for_update()).all()
        start.wait()
        if shop.db.is_postgres:
            _wait_for_blocked_backends(shop.db, 2)
    for thread in threads:
        thread.join(timeout=120)
    for db in engines:
        db.dispose()

    assert errors == []
    assert len(reports) == 2
    assert sum(r.customers_expired for r in reports) == CUSTOMERS
    expired = Counter(customer for customer, *_ in shop.expirations())
    assert expired == Counter(customers), "one expiration entry per customer"
    for n, customer in enumerate(customers):
        assert shop.balance(customer) == 5, f"customer {n} lost {10 + n} points once"
    assert Counter(m.customer_id for m in shop.outbox(event_type="credit-changed")) == Counter(
        customers
    )
    assert Counter(shop.contact_updates(shop_id)) == Counter(customers)
    notices = shop.notices()
    assert sorted(notices) == sorted((shop_id, c, 5, "2025-03-17") for c in customers)
    with shop.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(JobRun)) == 1
