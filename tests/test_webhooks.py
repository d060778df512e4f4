"""Webhooks into pointbridge: list subscriptions as transitions, and every rejection harmless."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from pointbridge.services import Services
from pointbridge.storage.models import LedgerEntry, ListMembership, OutboxMessage


@pytest.fixture
def hook(services: Services, tmp_path) -> str:
    """A jsonl integration with list 1 worth 50 points, and a customer; returns the URL path."""
    with services.db.transaction() as session:
        row = services.integrations.add(
            session, "dry", "jsonl", {"path": str(tmp_path / "o.jsonl"), "list_rewards": "1:50"}
        )
        services.loyalty.create_customer(session, {"email": "jana@example.com"})
        return urlsplit(services.integrations.webhook_url(row)).path


def _balance(client: FlaskClient, auth) -> int:
    return client.get("/api/customers?email=jana@example.com", headers=auth).json["items"][0][
        "balance"
    ]


def _counts(services: Services) -> tuple[int, int, int]:
    with services.db.transaction() as session:
        return tuple(
            session.scalar(select(func.count(model.id)))
            for model in (LedgerEntry, OutboxMessage, ListMembership)
        )


def _subscription(subscribed: bool, email: str = "jana@example.com", list_id: str = "1") -> dict:
    return {"email": email, "list_id": list_id, "subscribed": subscribed}


def test_subscribe_credits_once_and_unsubscribe_takes_it_back(
    client: FlaskClient, auth, hook: str
) -> None:
    first = client.post(hook, json=_subscription(True))
    assert first.status_code == 200 and "+50" in first.json["message"]
    assert _balance(client, auth) == 50

    duplicate = client.post(hook, json=_subscription(True))
    assert duplicate.status_code == 200 and "nothing changed" in duplicate.json["message"]
    assert _balance(client, auth) == 50

    left = client.post(hook, json=_subscription(False))
    assert left.status_code == 200 and "-50" in left.json["message"]
    assert _balance(client, auth) == 0
    assert client.post(hook, json=_subscription(False)).json["message"].endswith("nothing changed")

    again = client.post(hook, json=_subscription(True))
    assert "+50" in again.json["message"] and _balance(client, auth) == 50


def test_unsubscribe_never_takes_more_than_is_left(client, auth, hook, services) -> None:
    client.post(hook, json=_subscription(True))
    customer_id = client.get("/api/customers?email=jana@example.com", headers=auth).json["items"][
        0
    ]["id"]
    client.post(
        f"/api/customers/{customer_id}/transactions",
        json={"points": -30, "reason": "order"},
        headers=auth,
    )
    response = client.post(hook, json=_subscription(False))
    assert "-20" in response.json["message"]
    assert _balance(client, auth) == 0


def test_subscribing_again_after_spending_the_reward_mints_nothing(
    client: FlaskClient, auth, hook: str
) -> None:
    customer_id = client.get("/api/customers?email=jana@example.com", headers=auth).json["items"][
        0
    ]["id"]
    for _ in range(3):
        client.post(hook, json=_subscription(True))
        spend = client.post(
            f"/api/customers/{customer_id}/transactions",
            json={"points": -50, "reason": "order"},
            headers=auth,
        )
        left = client.post(hook, json=_subscription(False))
    # The first cycle earned 50 and spent it; the later ones found it spent, not returned.
    assert spend.status_code == 409 and "-0 points" in left.json["message"]
    assert _balance(client, auth) == 0
    again = client.post(hook, json=_subscription(True))
    assert "+0 points" in again.json["message"] and _balance(client, auth) == 0


def _wrong_token(hook: str) -> str:
    return hook.rsplit("/", 1)[0] + "/not-the-token"


def _unknown_integration(hook: str) -> str:
    return "/webhooks/999/" + hook.rsplit("/", 1)[1]


REJECTIONS: list[tuple[str, Callable[[str], str], object, int, str]] = [
    ("wrong token", _wrong_token, _subscription(True), 401, "Unknown webhook URL"),
    ("unknown integration", _unknown_integration, _subscription(True), 401, "Unknown webhook URL"),
    ("broken JSON", str, '{"email": "jana@example.com" "list_id": "1"}', 400, "not valid JSON"),
    ("empty body", str, "", 400, "empty"),
    ("wrong shape", str, {"mail": "x"}, 400, "Expected a JSON object"),
    (
        "unknown customer",
        str,
        _subscription(True, email="nobody@example.com"),
        404,
        "nobody@example.com",
    ),
    ("unknown list", str, _subscription(True, list_id="7"), 422, "List 7"),
    (
        "subscribed as a string",
        str,
        {**_subscription(True), "subscribed": "false"},
        400,
        "subscribed must be true or false",
    ),
]


@pytest.mark.parametrize(
    "url_for,body,status,fragment", [r[1:] for r in REJECTIONS], ids=[r[0] for r in REJECTIONS]
)
def test_rejections_say_why_and_change_nothing(
    client, auth, hook, services, url_for, body, status, fragment
) -> None:
    before = _counts(services)
    if isinstance(body, str):
        response = client.post(url_for(hook), data=body, content_type="application/json")
    else:
        response = client.post(url_for(hook), json=body)
    assert response.status_code == status
    assert fragment in response.json["message"]
    assert _counts(services) == before
    assert _balance(client, auth) == 0


def test_disabled_integrations_refuse_webhooks(client, hook, services) -> None:
    with services.db.transaction() as session:
        services.integrations.disable(services.integrations.get(session, "dry"))
    before = _counts(services)
    assert client.post(hook, json=_subscription(True)).status_code == 403
    assert _counts(services) == before


def test_the_url_answers_probes(client, hook) -> None:
    assert client.head(hook).status_code == 200
