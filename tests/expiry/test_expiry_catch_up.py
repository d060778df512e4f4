"""A missed night is caught up: after an outage, at start-up, and when the 02:00 run misfires."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobEvent
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select

from pointbridge.scheduler import expiry_job, start_scheduler
from pointbridge.services import Services
from pointbridge.storage.models import JobRun

DAY = date(2025, 3, 10)  # the day the conftest clock is frozen on
D = timedelta(days=1)
PRAGUE = ZoneInfo("Europe/Prague")


def _days_run(shop) -> list[date]:
    with shop.db.transaction() as session:
        return list(session.scalars(select(JobRun.day).order_by(JobRun.day)))


def _wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"gave up waiting for {what}")


def test_a_three_day_outage_catches_up_every_days_expirations_and_notices(
    shop, clock, database_url
):
    clock.move_to(datetime(2025, 3, 5, 12, 0, tzinfo=PRAGUE))
    shop_id = shop.jsonl("shop", notice_days=7)
    # One customer whose points expire on each day of the outage and on the day it ends...
    due = {
        day: shop.customer(f"due{n}@example.com", [(10 * (n + 1), day), (1, None)])
        for n, day in enumerate((DAY - 3 * D, DAY - 2 * D, DAY - D, DAY))
    }
    # ...and one whose lots come into the 7-day notice window on each of those days.
    later = shop.customer("later@example.com", [(n, DAY + (n + 3) * D) for n in range(1, 5)])
    clock.move_to(datetime(2025, 3, 6, 2, 0, tzinfo=PRAGUE))
    shop.run(DAY - 4 * D)  # the last night before the server went down
    notices_before = len(shop.notices())
    assert notices_before == 4  # due within a week: the four customers' lots

    # The server is down from the 7th to the 9th and comes back at 02:30 on the 10th.
    clock.move_to(datetime(2025, 3, 10, 2, 30, tzinfo=PRAGUE))
    expiry_job(shop.services)

    assert _days_run(shop) == [DAY - 4 * D, DAY - 3 * D, DAY - 2 * D, DAY - D, DAY]
    for n, (day, customer) in enumerate(due.items()):
        # Each day's lots expired by that day's run, dated that day.
        assert shop.expirations(customer) == [
            (customer, -10 * (n + 1), f"expiration:{day}", day.isoformat())
        ]
        assert shop.balance(customer) == 1
    # One notice per expiry date that entered the window, none for the days already warned of.
    assert sorted(n for n in shop.notices() if n[1] == later) == [
        (shop_id, later, 1, "2025-03-14"),
        (shop_id, later, 2, "2025-03-15"),
        (shop_id, later, 3, "2025-03-16"),
        (shop_id, later, 4, "2025-03-17"),
    ]

    # The scheduler's 02:00 run the same night finds nothing left to do.
    expiry_job(shop.services)
    assert len(shop.notices()) == notices_before + 4
    assert len(shop.expirations()) == 4


@pytest.fixture
def scheduler_for() -> Iterator[list[BackgroundScheduler]]:
    started: list[BackgroundScheduler] = []
    yield started
    for scheduler in started:
        scheduler.shutdown(wait=True)


def test_the_nightly_job_is_scheduled_at_the_configured_hour_and_zone(
    shop, scheduler_for, database_url
):
    services: Services = dataclasses.replace(
        shop.services,
        settings=dataclasses.replace(
            shop.services.settings, expiry_hour=4, expiry_timezone="America/New_York"
        ),
    )
    scheduler = start_scheduler(services)
    scheduler_for.append(scheduler)

    job = scheduler.get_job("expiry")
    # 02:30 in Prague on the 10th is 21:30 on the 9th in New York: the next run is 04:00 there.
    new_york = ZoneInfo("America/New_York")
    assert job.next_run_time == datetime(2025, 3, 10, 4, 0, tzinfo=new_york)
    assert str(job.trigger.timezone) == "America/New_York"
    # A run missed by however long (machine asleep, scheduler thread busy) still runs, once.
    assert job.misfire_grace_time is None
    assert job.coalesce is True
    assert job.max_instances == 1
    # The start-up catch-up runs "today" in the shop's zone: still the 9th in New York.
    _wait_until(lambda: _days_run(shop) == [date(2025, 3, 9)], "the start-up catch-up")


def test_a_misfired_nightly_run_still_runs_once_and_catches_up(
    shop, clock, scheduler_for, database_url
):
    shop.jsonl("shop", notice_days=7)
    expiring = {
        day: shop.customer(f"c{day.day}@example.com", [(5, day)])
        for day in (DAY + D, DAY + 2 * D, DAY + 3 * D)
    }
    scheduler = start_scheduler(shop.services)
    scheduler_for.append(scheduler)
    _wait_until(lambda: _days_run(shop) == [DAY], "the start-up catch-up")

    events: list[JobEvent] = []
    done = threading.Event()

    def listen(event: JobEvent) -> None:
        if event.job_id == "expiry":
            events.append(event)
            done.set()

    scheduler.add_listener(listen, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    # The machine sleeps through three 02:00s and wakes at 09:00 on the 13th.
    clock.move_to(datetime(2025, 3, 13, 9, 0, tzinfo=PRAGUE))
    scheduler.wakeup()
    assert done.wait(30), "the scheduler never ran the overdue job"

    assert [e.code for e in events] == [EVENT_JOB_EXECUTED], (
        "expected one run, neither missed nor repeated"
    )
    assert _days_run(shop) == [DAY, DAY + D, DAY + 2 * D, DAY + 3 * D]
    for day, customer in expiring.items():
        assert shop.expirations(customer) == [(customer, -5, f"expiration:{day}", str(day))]
    # Coalesced: the three missed 02:00s made one run; the next is tomorrow's.
    assert scheduler.get_job("expiry").next_run_time == datetime(2025, 3, 14, 2, 0, tzinfo=PRAGUE)
