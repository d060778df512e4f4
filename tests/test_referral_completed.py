"""``referral-completed`` announces each referral once: a count the shop lowers (a refunded
order's referral) and raises again completes nothing new until it passes its highest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, insert, select, text

from pointbridge.services import Services
from pointbridge.storage.migrate import upgrade
from pointbridge.storage.models import Customer, OutboxMessage


@pytest.fixture
def services(services: Services, tmp_path: Path) -> Services:
    """The services with an integration: events are queued for integrations only."""
    with services.db.transaction() as session:
        services.integrations.add(session, "dry", "jsonl", {"path": str(tmp_path / "o.jsonl")})
    return services


def _announced(services: Services) -> list[dict[str, Any]]:
    with services.db.read() as session:
        return list(
            session.scalars(
                select(OutboxMessage.payload)
                .where(OutboxMessage.event_type == "referral-completed")
                .order_by(OutboxMessage.id)
            )
        )


def _patch(client: FlaskClient, auth: dict[str, str], customer_id: int, referrals: int) -> None:
    response = client.patch(
        f"/api/customers/{customer_id}", json={"referrals": referrals}, headers=auth
    )
    assert response.status_code == 200, response.json


def test_a_referral_counted_again_after_a_lowered_count_is_not_announced_twice(
    client: FlaskClient, auth: dict[str, str], services: Services
) -> None:
    created = client.post("/api/customers", json={"email": "jana@example.com"}, headers=auth)
    customer_id = created.json["id"]
    for referrals in (2, 1, 2, 0, 1, 2):
        _patch(client, auth, customer_id, referrals)
    assert _announced(services) == [{"referrals": 2, "added": 2}]

    # Past the highest count: only the referrals beyond it are new.
    _patch(client, auth, customer_id, 1)
    _patch(client, auth, customer_id, 4)
    assert _announced(services)[1:] == [{"referrals": 4, "added": 2}]
    assert client.get(f"/api/customers/{customer_id}", headers=auth).json["referrals"] == 4


def test_referrals_a_customer_was_created_with_count_as_had(
    client: FlaskClient, auth: dict[str, str], services: Services
) -> None:
    created = client.post(
        "/api/customers", json={"email": "eva@example.com", "referrals": 3}, headers=auth
    )
    customer_id = created.json["id"]
    _patch(client, auth, customer_id, 1)
    _patch(client, auth, customer_id, 3)
    assert _announced(services) == []
    _patch(client, auth, customer_id, 4)
    assert _announced(services) == [{"referrals": 4, "added": 1}]


def test_the_bulk_api_keeps_the_same_highest_count(
    client: FlaskClient, auth: dict[str, str], services: Services
) -> None:
    """The bulk endpoint (the import's writer) and a PATCH share the customer's highest
    count: neither announces a referral the other did."""
    created = client.post("/api/customers", json={"email": "ota@example.com"}, headers=auth)
    _patch(client, auth, created.json["id"], 2)
    for referrals in (1, 2, 3):
        response = client.post(
            "/api/customers/bulk?events=true",
            json=[{"email": "ota@example.com", "referrals": referrals}],
            headers=auth,
        )
        assert response.status_code == 200, response.json
    assert _announced(services) == [{"referrals": 2, "added": 2}, {"referrals": 3, "added": 1}]


def test_a_count_an_import_without_events_lowered_is_still_a_count_the_customer_had(
    client: FlaskClient, auth: dict[str, str], services: Services
) -> None:
    """README: referral-completed goes out only for a count past the highest the customer
    ever had; the same story told with PATCHes alone announces nothing
    (the tests above). Created with 3, lowered to 1 by the bulk API without
    events, raised to 3 by a PATCH: 2 referrals are announced as completed."""
    created = client.post(
        "/api/customers", json={"email": "eva@example.com", "referrals": 3}, headers=auth
    )
    assert created.status_code == 201, created.json
    lowered = client.post(
        "/api/customers/bulk", json=[{"email": "eva@example.com", "referrals": 1}], headers=auth
    )
    assert lowered.json["items"][0]["status"] == "updated", lowered.json

    raised = client.patch(
        f"/api/customers/{created.json['id']}", json={"referrals": 3}, headers=auth
    )

    assert raised.status_code == 200, raised.json
    assert _announced(services) == []


def test_customers_from_before_the_upgrade_start_at_their_count(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    upgrade(url, "0010")
    engine = create_engine(url)
    with engine.begin() as connection:
        for number, referrals in ((1, 2), (2, 0)):
            connection.execute(
                insert(Customer.__table__).values(
                    id=number,
                    email=f"c{number}@example.com",
                    referral_code=f"R{number}",
                    referrals=referrals,
                )
            )
    upgrade(url)
    with engine.connect() as connection:
        highs = connection.execute(text("SELECT id, referrals_high FROM customer ORDER BY id"))
        assert [tuple(row) for row in highs] == [(1, 2), (2, 0)]
    engine.dispose()
