"""A platform that throttles part of a call: the untried items wait, costing no attempt."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import time_machine
from marshmallow import Schema
from sqlalchemy import select

from pointbridge import Contact, Integration, ItemFailure, Platform, RateLimited, hookimpl
from pointbridge.models import IntegrationRow, OutboxMessage, OutboxStatus
from pointbridge.services import Services


class HalfThrottled:
    """Takes the first contact of each call, then answers 429 for the rest."""

    def __init__(self) -> None:
        self.received: list[str] = []

    @hookimpl
    def register_platforms(self, register: Callable[[Platform], None]) -> None:
        register(Platform(name="halfthrottled", title="Half throttled", settings_schema=Schema))

    @hookimpl
    def install(self, integration: Integration) -> None:
        return None

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
    assert all(m.next_attempt_at >= started + timedelta(seconds=89) for m in waiting)

    services.worker().drain()
    assert platform.received == ["c0@example.com"], "nothing goes before the reset"
    with time_machine.travel(resume_at + timedelta(seconds=1)):
        services.worker().drain()
    assert platform.received == ["c0@example.com", "c1@example.com"]
