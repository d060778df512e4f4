"""A night's expiry notices on a platform with a request budget are paced over a share of it,
so a contact change made after the run reaches the platform before the notices are all out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from marshmallow import Schema

from pointbridge import Capability, Platform, RateLimit, hookimpl
from pointbridge.services import Services

from .conftest import DAY, ContactsOnlyPlugin, Shop

NOTICES = 6


class SlowEventsPlugin(ContactsOnlyPlugin):
    """One event per request within 3,600 requests a minute, though a call carries ten:
    Ecomail's shape, sixty times faster, so the worker's own pacing stays out of the test's
    way."""

    @hookimpl
    def register_platforms(self, register: Callable[[Platform], None]) -> None:
        register(
            Platform(
                name="slow-events",
                title="Slow Events",
                settings_schema=Schema,
                capabilities=frozenset({Capability.EVENTS}),
                max_batch=500,
                max_event_batch=10,
                rate_limit=RateLimit(3600, 60.0),
                event_rate=60.0,
            )
        )


@pytest.fixture
def slow_events(services: Services) -> SlowEventsPlugin:
    plugin = SlowEventsPlugin()
    services.host.register(plugin, "slow-events")
    return plugin


def _events(plugin: SlowEventsPlugin) -> list[str]:
    return [f"{e.type}:{e.email}" for e in plugin.events]


def test_a_contact_changed_after_the_run_goes_out_before_the_nights_notices(
    shop: Shop, slow_events: SlowEventsPlugin, clock: time_machine.Coordinates
):
    with shop.db.transaction() as session:
        shop.services.integrations.add(session, "slow", "slow-events", {"expiry_notice_days": 7})
    shop.services.integrations.install(shop.db, "slow")
    noticed = [f"c{n}@example.com" for n in range(NOTICES)]
    for email in noticed:
        shop.customer(email, [(10, DAY + timedelta(days=3))])
    live = shop.customer("live@example.com")
    shop.forget_outbox()

    report = shop.run(DAY)
    with shop.db.transaction() as session:
        shop.services.loyalty.post_transaction(session, live, 5, "order")
    shop.deliver()

    assert report.notices == {"slow": NOTICES}
    assert [c.email for c in slow_events.contacts] == ["live@example.com"]
    # Half the platform's 60 events a second go to notices, one each 1/30 s from the run:
    # at the run's instant only the first is due.
    assert _events(slow_events) == [
        "credit-expires:c0@example.com",
        "credit-changed:live@example.com",
    ]

    # Paced by the 60 events a second the platform takes, not by 60 calls of ten.
    clock.shift(timedelta(seconds=0.05))
    shop.deliver()
    notices = [e for e in _events(slow_events) if e.startswith("credit-expires:")]
    assert notices == [f"credit-expires:{email}" for email in noticed[:2]]

    clock.shift(timedelta(seconds=1))
    shop.deliver()

    notices = [e for e in _events(slow_events) if e.startswith("credit-expires:")]
    assert notices == [f"credit-expires:{email}" for email in noticed]


def test_each_notice_is_due_at_its_turn_to_the_microsecond_and_a_rerun_paces_only_new_ones(
    shop: Shop, slow_events: SlowEventsPlugin, clock: time_machine.Coordinates
):
    with shop.db.transaction() as session:
        shop.services.integrations.add(session, "slow", "slow-events", {"expiry_notice_days": 7})
    shop.services.integrations.install(shop.db, "slow")
    # Two expiry dates: the later date's notices queue behind the earlier date's.
    for n in range(NOTICES):
        shop.customer(f"c{n}@example.com", [(10, DAY + timedelta(days=2 + n % 2))])
    shop.forget_outbox()
    spacing = timedelta(seconds=1 / 30)
    start = datetime.now(UTC)

    shop.run(DAY)

    due = [(m.customer_id, m.next_attempt_at) for m in shop.outbox(event_type="credit-expires")]
    # Soonest expiry first (c0, c2 and c4 expire a day earlier), then by customer.
    order = sorted(c for c, _ in due)
    order = order[0::2] + order[1::2]
    assert sorted(due, key=lambda d: d[1]) == [
        (customer, start + spacing * n) for n, customer in enumerate(order)
    ]

    # A credit made the next day: the next night's run queues its one notice, due at the
    # run's start, not behind the six already queued ones.
    clock.shift(timedelta(days=1))
    late = shop.customer("late@example.com", [(10, DAY + timedelta(days=5))])
    shop.forget_outbox()
    report = shop.run(DAY + timedelta(days=1))

    assert report.notices == {"slow": 1}
    assert [
        (m.customer_id, m.next_attempt_at) for m in shop.outbox(event_type="credit-expires")
    ] == [(late, start + timedelta(days=1))]
