"""A platform that throttles part of a call: the untried items wait, costing no attempt."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import time_machine
from sqlalchemy import delete, select

from pointbridge import Contact, Integration, ItemFailure, RateLimited, hookimpl
from pointbridge.delivery.exports import Exporter, queue_export
from pointbridge.services import Services
from pointbridge.storage.models import IntegrationRow, OutboxMessage, OutboxStatus
from pointbridge.testing.inprocess import InProcessPlatform


class HalfThrottled(InProcessPlatform):
    """Takes the first contact of each call, then answers 429 for the rest."""

    name = "halfthrottled"

    def __init__(self) -> None:
        self.received: list[str] = []

    @hookimpl
    def push_contact(
        self, integration: Integration, contacts: Sequence[Contact]
    ) -> list[ItemFailure]:
        first, *rest = contacts
        self.received.append(first.email)
        throttled = RateLimited("429 after the first request", retry_after=90)
        return [ItemFailure(contact.customer_id, throttled) for contact in rest]


def test_throttled_items_wait_for_the_reset_and_keep_their_attempts(services: Services) -> None:
    platform = HalfThrottled()
    services.host.register(platform, "halfthrottled")
    with services.db.transaction() as session:
        services.integrations.add(session, "half", "halfthrottled", {})
    services.integrations.install(services.db, "half")
    with services.db.transaction() as session:
        for n in range(3):
            services.loyalty.create_customer(session, {"email": f"c{n}@example.com"})

    started = datetime.now(UTC)
    services.worker().drain()

    assert platform.received == ["c0@example.com"]
    with services.db.transaction() as session:
        resume_at = session.scalar(select(IntegrationRow.resume_at))
        waiting = session.scalars(
            select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.PENDING)
        ).all()
    assert resume_at >= started + timedelta(seconds=89)
    assert len(waiting) == 2 and {m.attempts for m in waiting} == {0}

    services.worker().drain()
    assert platform.received == ["c0@example.com"], "nothing goes before the reset"
    with time_machine.travel(resume_at + timedelta(seconds=1)):
        services.worker().drain()
    assert platform.received == ["c0@example.com", "c1@example.com"]


class Unsaid(InProcessPlatform):
    """Answers 429 without Retry-After to the calls numbered in ``throttled``."""

    name = "unsaid"

    def __init__(self, throttled: set[int]) -> None:
        self.throttled = throttled
        self.calls = 0

    @hookimpl
    def push_contact(
        self, integration: Integration, contacts: Sequence[Contact]
    ) -> list[ItemFailure]:
        self.calls += 1
        if self.calls in self.throttled:
            raise RateLimited("429 Too Many Requests")
        return []


def test_a_429_without_retry_after_backs_off_from_a_second_and_resets_on_success(
    services: Services,
) -> None:
    services.host.register(Unsaid(throttled={1, 2, 3, 5}), "unsaid")
    with services.db.transaction() as session:
        services.integrations.add(session, "u", "unsaid", {})
    services.integrations.install(services.db, "u")

    pauses = []
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        for n in range(5):
            with services.db.transaction() as session:
                services.loyalty.create_customer(session, {"email": f"c{n}@example.com"})
            services.worker().drain()
            with services.db.read() as session:
                resume_at = session.scalar(select(IntegrationRow.resume_at))
            now = datetime.now(UTC)
            pauses.append(max(0.0, (resume_at - now).total_seconds()) if resume_at else 0.0)
            clock.shift(timedelta(minutes=2))  # the shop's next order comes after the pause

    # Three unsaid 429s in a row wait 1, 2, 4 s (not 30 s each); a call goes through; the
    # next unsaid 429 waits a second again.
    assert pauses == [1.0, 2.0, 4.0, 0.0, 1.0]


class HalfThrottledPages(HalfThrottled):
    max_batch = 2


def test_an_export_page_cut_short_by_a_429_pauses_the_integration(services: Services) -> None:
    platform = HalfThrottledPages()
    services.host.register(platform, "halfthrottled")
    with services.db.transaction() as session:
        row = services.integrations.add(session, "half", "halfthrottled", {})
        for n in range(3):
            services.loyalty.create_customer(session, {"email": f"c{n}@example.com"})
    services.integrations.install(services.db, "half")
    with services.db.transaction() as session:
        session.execute(delete(OutboxMessage))  # only the export sends

    job = queue_export(services.db, row.id)
    told_to_wait = _StopWhenToldToWait()
    with time_machine.travel(datetime.now(UTC), tick=False):
        started = datetime.now(UTC)
        Exporter(services.db, services.integrations, services.outbox, owner="t").run(
            job.id, stop=told_to_wait
        )
        with services.db.read() as session:
            resume_at = session.scalar(select(IntegrationRow.resume_at))
        services.worker().drain()

    assert platform.received == ["c0@example.com"]
    # The export's next page waits for the platform's reset, as live delivery does.
    assert told_to_wait.waits[:1] == [90.0]
    # Live delivery of the two the platform did not take waits for the reset too.
    assert resume_at == started + timedelta(seconds=90)


class _StopWhenToldToWait(threading.Event):
    """Records the first wait the exporter asks for, and stops it there."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout or 0.0)
        return True
