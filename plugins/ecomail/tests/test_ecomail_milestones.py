"""Issue 17's events end to end on Ecomail: the host over HTTP against the fake, both databases.
Each new event reaches tracker/events once, under its label, with its value; an event switched
off is not sent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from .test_ecomail_e2e import NAME, Shop, add, events_of, running


@pytest.fixture(autouse=True)
def pacer() -> None:
    """End to end runs the real shared budget."""


@pytest.fixture
def shop(tmp_path: Path, database_url: str) -> Iterator[Shop]:
    with running(tmp_path, database_url) as (account, api, pb):
        add(pb, api)
        yield account, api, pb


def labelled(shop: Shop, email: str, label: str) -> list[dict[str, Any]]:
    return [value for named, value in events_of(shop[0], email) if named == label]


def test_each_new_event_arrives_once_under_its_label(shop: Shop) -> None:
    _account, _api, pb = shop
    pb.cli("integrations", "set", NAME, "reward_thresholds=100", "expiry_notice_days=10,2")
    email = "jana@example.com"
    customer = pb.create_customer(email, tier_id="1", tier_name="Bronze")
    expires = date.today() + timedelta(days=20)
    pb.transaction(customer["id"], 120, "order", expires_at=expires)
    pb.update_customer(customer["id"], tier_id="2", tier_name="Silver", referrals=1)
    pb.update_customer(customer["id"], tier_id="2", referrals=1)  # no change: no event
    pb.deliver()
    # Each night's run twice: every reminder and the expiry go out once all the same.
    for ahead in (10, 10, 2, 2, 0, 0):
        pb.cli("expiry", "run", "--date", (expires - timedelta(days=ahead)).isoformat())
        pb.deliver()

    assert labelled(shop, email, "reward") == [{"threshold": 100, "balance": 120}]
    assert labelled(shop, email, "tier") == [
        {
            "old_tier_id": "1",
            "old_tier_name": "Bronze",
            "new_tier_id": "2",
            "new_tier_name": "Silver",
            "direction": "up",
        }
    ]
    assert labelled(shop, email, "referral") == [{"referrals": 1, "added": 1}]
    assert labelled(shop, email, "expiry") == [
        {"points": 120, "expires_on": expires.isoformat(), "days_before": 10},
        {"points": 120, "expires_on": expires.isoformat(), "days_before": 2},
    ]
    assert labelled(shop, email, "expired") == [{"points": 120, "balance": 0}]


def test_a_switched_off_event_is_not_sent(shop: Shop) -> None:
    _account, _api, pb = shop
    pb.cli("integrations", "set", NAME, "disabled_events=referral-completed")
    email = "eva@example.com"
    customer = pb.create_customer(email, tier_id="1")
    pb.update_customer(customer["id"], tier_id="2", referrals=4)
    pb.deliver()

    assert labelled(shop, email, "referral") == []
    assert [e["direction"] for e in labelled(shop, email, "tier")] == ["up"]
