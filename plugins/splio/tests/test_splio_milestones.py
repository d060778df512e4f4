"""Issue 17's events on Splio, end to end (the host over HTTP against the fake, both
databases): each event is one interaction on the shop's channel, once; an event switched off
is not sent; without a channel none is."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from pointbridge_splio.fake import FakeSplio, serve
from sqlalchemy import select

from pointbridge.storage.models import OutboxMessage, OutboxStatus
from pointbridge.testing.e2e import Pointbridge

KEY = "splio-e2e-key-0123456789"
NAME = "loyoly"


@pytest.fixture
def universe() -> FakeSplio:
    return FakeSplio(api_keys={KEY})


@pytest.fixture
def shop(tmp_path: Path, database_url: str, universe: FakeSplio) -> Iterator[Pointbridge]:
    with serve(universe) as fake, Pointbridge(tmp_path, database_url=database_url) as pb:
        settings = {"api_url": fake.url, "api_key": KEY, "events_channel": "loyalty"}
        pb.add_integration(NAME, "splio", settings)
        yield pb


def interactions(universe: FakeSplio, email: str) -> list[str]:
    with universe.lock:
        return [e["event"] for e in universe.events if e["individual_id"] == email]


def test_each_event_is_one_interaction_on_the_shops_channel(
    shop: Pointbridge, universe: FakeSplio
) -> None:
    shop.cli("integrations", "set", NAME, "reward_thresholds=100", "expiry_notice_days=10,2")
    email = "jana@example.com"
    customer = shop.create_customer(email, tier_id="1")
    expires = date.today() + timedelta(days=20)
    shop.transaction(customer["id"], 120, "order", expires_at=expires)
    shop.update_customer(customer["id"], tier_id="2", referrals=1)
    shop.update_customer(customer["id"], tier_id="2", referrals=1)  # no change: no event
    shop.deliver()
    # Each night's run twice: every reminder and the expiry go out once all the same.
    for ahead in (10, 10, 2, 2, 0, 0):
        shop.cli("expiry", "run", "--date", (expires - timedelta(days=ahead)).isoformat())
        shop.deliver()

    assert interactions(universe, email) == [
        "ellity-credit-changed",
        "ellity-reward-available",
        "ellity-tier-changed",
        "ellity-referral-completed",
        "ellity-credit-expires",
        "ellity-credit-expires",
        "ellity-credit-changed",
        "ellity-points-expired",
    ]
    with universe.lock:
        sent = [e for e in universe.events if e["individual_id"] == email]
    assert {e["channel"] for e in sent} == {"loyalty"}
    assert {e["ext_provider"] for e in sent} == {"pointbridge"}
    assert len({e["ext_id"] for e in sent}) == len(sent)


def test_a_switched_off_event_and_an_integration_without_channel_send_nothing(
    shop: Pointbridge, universe: FakeSplio
) -> None:
    shop.cli("integrations", "set", NAME, "disabled_events=credit-changed")
    customer = shop.create_customer("eva@example.com", tier_id="1")
    shop.transaction(customer["id"], 10, "order")
    shop.update_customer(customer["id"], tier_id="2")
    shop.deliver()
    assert interactions(universe, "eva@example.com") == ["ellity-tier-changed"]

    shop.cli("integrations", "set", NAME, "events_channel=", "expiry_notice_days=10")
    expires = date.today() + timedelta(days=20)
    shop.transaction(customer["id"], 5, "order", expires_at=expires)
    shop.update_customer(customer["id"], tier_id="3")
    # Nothing is queued for events it cannot send, and a night's reminders do not count it.
    assert {kind for kind, _ in queued(shop)} == {"contact"}
    night = (expires - timedelta(days=10)).isoformat()
    assert "would notify: none" in shop.cli("expiry", "run", "--dry-run", "--date", night)
    shop.deliver()
    assert interactions(universe, "eva@example.com") == ["ellity-tier-changed"]
    assert shop.pending(NAME) == 0


def queued(shop: Pointbridge) -> list[tuple[str, str | None]]:
    """The kinds and event types pending for the integration, oldest first."""
    with shop.services.db.read() as session:
        rows = session.execute(
            select(OutboxMessage.kind, OutboxMessage.event_type)
            .where(OutboxMessage.status == OutboxStatus.PENDING)
            .order_by(OutboxMessage.id)
        )
        return [(kind, event_type) for kind, event_type in rows]
