"""Issue 17's events and fields end to end: the host over HTTP against the fake SmartEmailing,
on both databases. Each new event arrives once with its payload; two expiry reminders go out
once each; an event switched off is not sent; the new fields arrive."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from .test_smartemailing_e2e import NAME, PREFIX, Shop, connected, events_of, running


@pytest.fixture(autouse=True)
def pacer() -> None:
    """End to end runs the real shared budget."""


@pytest.fixture
def shop(tmp_path: Path, database_url: str) -> Iterator[Shop]:
    with running(tmp_path, database_url) as (fake, api, pb):
        connected(pb, fake, api)
        yield fake, api, pb


def named(shop: Shop, email: str, suffix: str) -> list[dict]:
    return [payload for name, payload in events_of(shop[0], email) if name.endswith(suffix)]


def test_tier_referral_and_reward_events_arrive_once_with_their_payload(shop: Shop) -> None:
    fake, _api, pb = shop
    pb.cli("integrations", "set", NAME, "reward_thresholds=500,1000")
    customer = pb.create_customer("jana@example.com", tier_id="1", tier_name="Bronze")
    pb.update_customer(customer["id"], tier_id="2", tier_name="Silver", referrals=1)
    pb.update_customer(customer["id"], tier_name="Silver", referrals=1)  # no change: no event
    pb.transaction(customer["id"], 450, "order")
    pb.transaction(customer["id"], 100, "order")  # 450 -> 550 crosses 500
    pb.transaction(customer["id"], 600, "order")  # 550 -> 1150 crosses 1000 only
    pb.transaction(customer["id"], -700, "reward")
    pb.transaction(customer["id"], 100, "order")  # 450 -> 550 crosses 500 again
    pb.update_customer(customer["id"], tier_id="1", tier_name="Bronze")
    pb.deliver()

    email = "jana@example.com"
    assert named(shop, email, "tier-changed") == [
        {
            "old_tier_id": "1",
            "old_tier_name": "Bronze",
            "new_tier_id": "2",
            "new_tier_name": "Silver",
            "direction": "up",
        },
        {
            "old_tier_id": "2",
            "old_tier_name": "Silver",
            "new_tier_id": "1",
            "new_tier_name": "Bronze",
            "direction": "down",
        },
    ]
    assert named(shop, email, "referral-completed") == [{"referrals": 1, "added": 1}]
    assert named(shop, email, "reward-available") == [
        {"threshold": 500, "balance": 550},
        {"threshold": 1000, "balance": 1150},
        {"threshold": 500, "balance": 550},
    ]
    assert fake.field_values(email)[f"{PREFIX}lifetime_points"] == "1250"


def test_points_expired_arrives_once_and_two_reminders_once_each(shop: Shop) -> None:
    fake, _api, pb = shop
    pb.cli("integrations", "set", NAME, "expiry_notice_days=14,3")
    expires = date.today() + timedelta(days=30)
    customer = pb.create_customer("petr@example.com")
    pb.transaction(customer["id"], 80, "review", expires_at=expires)
    pb.transaction(customer["id"], 15, "order")
    pb.deliver()

    for ahead in (14, 13, 3, 3, 2, 0, 0):
        pb.cli("expiry", "run", "--date", (expires - timedelta(days=ahead)).isoformat())
        pb.deliver()

    reminders = named(shop, "petr@example.com", "credit-expires")
    assert reminders == [
        {"points": 80, "expiration_date": expires.isoformat(), "days_before": 14},
        {"points": 80, "expiration_date": expires.isoformat(), "days_before": 3},
    ]
    assert named(shop, "petr@example.com", "points-expired") == [{"points": 80, "balance": 15}]
    fields = fake.field_values("petr@example.com")
    assert fields[f"{PREFIX}credit"] == "15"
    assert fields[f"{PREFIX}lifetime_points"] == "95"


def test_a_switched_off_event_is_not_sent_and_the_others_are(shop: Shop) -> None:
    _fake, _api, pb = shop
    out = pb.cli("integrations", "set", NAME, "disabled_events=tier-changed,no-such", exit_code=1)
    assert "no event no-such" in out and "tier-changed" in out
    pb.cli("integrations", "set", NAME, "disabled_events=tier-changed")
    customer = pb.create_customer("eva@example.com", tier_id="gold")
    pb.update_customer(customer["id"], tier_id="silver", referrals=2)
    pb.deliver()

    assert named(shop, "eva@example.com", "tier-changed") == []
    assert named(shop, "eva@example.com", "referral-completed") == [{"referrals": 2, "added": 2}]


def test_tier_progress_fields_arrive(shop: Shop) -> None:
    fake, _api, pb = shop
    lapses = date.today() + timedelta(days=200)
    customer = pb.create_customer(
        "ota@example.com",
        tier_id="2",
        tier_name="Silver",
        tier_expires_at=lapses.isoformat(),
        points_to_next_tier=320,
    )
    assert customer["tier_expires_at"] == lapses.isoformat()
    pb.deliver()
    fields = fake.field_values("ota@example.com")
    assert fields[f"{PREFIX}tier_expires_at"] == f"{lapses.isoformat()} 00:00:00"
    assert fields[f"{PREFIX}points_to_next_tier"] == "320"

    pb.update_customer(customer["id"], tier_expires_at=None, points_to_next_tier=None)
    pb.deliver()
    fields = fake.field_values("ota@example.com")
    assert fields[f"{PREFIX}tier_expires_at"] is None
    assert fields[f"{PREFIX}points_to_next_tier"] == ""
