"""Money stays exact when many clients hit one balance at once, over real HTTP, on both
databases: every balance equals its ledger and its lots, none is negative, every answer that
said a debit happened is in the ledger, and nothing answers 5xx."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select, text

from pointbridge.delivery.export_pages import start
from pointbridge.delivery.exports import cancel_export, queue_export
from pointbridge.services import Services
from pointbridge.storage.models import Customer, ExportJob, LedgerEntry, OutboxMessage
from pointbridge.testing.served import released_together, served
from pointbridge.web.cli import cli

THREADS = 40
LIST_REWARD = 30


@dataclass(frozen=True)
class Shop:
    url: str
    auth: dict[str, str]
    webhook_url: str


@pytest.fixture
def shop(app: Flask, services: Services, auth: dict[str, str], tmp_path: Path) -> Iterator[Shop]:
    with services.db.transaction() as session:
        row = services.integrations.add(
            session,
            "dry",
            "jsonl",
            {"path": str(tmp_path / "out.jsonl"), "list_rewards": f"7:{LIST_REWARD}"},
        )
        webhook_url = services.integrations.webhook_url(row)
    with served(app) as url:
        yield Shop(url, auth, webhook_url.replace(services.settings.public_url, url, 1))


_clients = threading.local()


def _client() -> requests.Session:
    """One keep-alive connection per client thread, as a shop system's HTTP pool has."""
    if not hasattr(_clients, "session"):
        _clients.session = requests.Session()
    return _clients.session


def _in_parallel(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls on THREADS client threads, all released at once."""
    return released_together([lambda _http, call=call: call() for call in calls], THREADS)


def _create(shop: Shop, email: str) -> dict[str, Any]:
    response = _client().post(
        f"{shop.url}/api/customers", json={"email": email}, headers=shop.auth, timeout=60
    )
    assert response.status_code == 201, response.text
    return response.json()


def _transaction(shop: Shop, customer_id: int, points: int, **extra: Any) -> requests.Response:
    return _client().post(
        f"{shop.url}/api/customers/{customer_id}/transactions",
        json={"points": points, "reason": "order", **extra},
        headers=shop.auth,
        timeout=60,
    )


def _webhook(shop: Shop, email: str, subscribed: bool) -> requests.Response:
    body = {"email": email, "list_id": "7", "subscribed": subscribed}
    return _client().post(shop.webhook_url, json=body, timeout=60)


def _verify_ledger(app: Flask) -> str:
    result = app.test_cli_runner().invoke(cli, ["ledger", "verify"])
    assert result.exit_code == 0, result.output
    return result.output


def _balances(services: Services) -> dict[int, int]:
    with services.db.read() as session:
        return dict(session.execute(select(Customer.id, Customer.balance)).all())


def _statuses(responses: list[requests.Response]) -> Counter[int]:
    return Counter(response.status_code for response in responses)


def test_forty_debits_of_ten_on_a_hundred_take_exactly_ten(
    shop: Shop, app: Flask, services: Services
) -> None:
    customer = _create(shop, "jana@example.com")
    assert _transaction(shop, customer["id"], 100).status_code == 201

    responses = _in_parallel(
        [lambda: _transaction(shop, customer["id"], -10) for _ in range(THREADS)]
    )

    assert _statuses(responses) == {201: 10, 409: 30}
    refused = [r.json() for r in responses if r.status_code == 409]
    assert all("cannot take 10" in body["message"] for body in refused)
    assert _balances(services)[customer["id"]] == 0
    _verify_ledger(app)


def test_one_reference_sent_at_once_by_many_clients_credits_once(
    shop: Shop, app: Flask, services: Services
) -> None:
    customer = _create(shop, "jana@example.com")

    responses = _in_parallel(
        [lambda: _transaction(shop, customer["id"], 25, reference="order-1") for _ in range(32)]
    )

    assert _statuses(responses) == {201: 1, 200: 31}
    assert all(r.json()["replayed"] for r in responses if r.status_code == 200)
    assert _balances(services)[customer["id"]] == 25
    _verify_ledger(app)


def test_one_email_created_at_once_by_many_clients_is_one_customer_and_409s(
    shop: Shop, services: Services
) -> None:
    responses = _in_parallel(
        [
            lambda: _client().post(
                f"{shop.url}/api/customers",
                json={"email": "External_Id.Fan@Example.com"},
                headers=shop.auth,
                timeout=60,
            )
            for _ in range(32)
        ]
    )

    assert _statuses(responses) == {201: 1, 409: 31}
    assert all(
        "external_id.fan@example.com" in r.json()["message"]
        for r in responses
        if r.status_code == 409
    )
    assert len(_balances(services)) == 1


def test_subscribe_and_unsubscribe_webhooks_at_once_credit_the_reward_at_most_once(
    shop: Shop, app: Flask, services: Services
) -> None:
    _create(shop, "jana@example.com")
    flips = [i % 2 == 0 for i in range(THREADS)]

    responses = _in_parallel([lambda s=s: _webhook(shop, "jana@example.com", s) for s in flips])

    assert _statuses(responses) == {200: THREADS}
    # Each answer is a transition or "nothing changed"; whatever the order, the balance is
    # the reward exactly when the last transition was a subscription.
    credits = sum("+30 points" in r.json()["message"] for r in responses)
    debits = sum("-30 points" in r.json()["message"] for r in responses)
    assert credits - debits in (0, 1)
    assert list(_balances(services).values()) == [LIST_REWARD * (credits - debits)]
    _verify_ledger(app)


def test_a_mixed_crowd_of_credits_debits_and_webhooks_keeps_every_balance_exact(
    shop: Shop, app: Flask, services: Services
) -> None:
    buyers = [_create(shop, f"buyer{n}@example.com") for n in range(4)]
    subscribers = [f"reader{n}@example.com" for n in range(3)]
    for _ in subscribers:
        _create(shop, _)
    for buyer in buyers:
        assert _transaction(shop, buyer["id"], 50, reference=f"open-{buyer['id']}").ok

    rng = random.Random(12)
    plan: list[tuple[str, Any, int, str]] = []
    for n in range(THREADS * 6):
        if rng.random() < 0.7:
            buyer = rng.choice(buyers)
            points = rng.choice([-40, -25, -10, -5, 5, 15, 30])
            plan.append(("rest", buyer["id"], points, f"t-{n}"))
        else:
            plan.append(("hook", rng.choice(subscribers), int(rng.random() < 0.5), ""))

    def send(step: tuple[str, Any, int, str]) -> tuple[tuple[str, Any, int, str], Any]:
        kind, who, points, reference = step
        if kind == "rest":
            return step, _transaction(shop, who, points, reference=reference)
        return step, _webhook(shop, who, bool(points))

    results = _in_parallel([lambda step=step: send(step) for step in plan])

    statuses = Counter(response.status_code for _, response in results)
    assert not [s for s in statuses if s >= 500], statuses
    assert set(statuses) <= {200, 201, 409}, statuses
    # Every transaction the API said it made is in the ledger, and nothing else is.
    accepted = {ref: points for (kind, _, points, ref), r in results if r.status_code == 201}
    with services.db.read() as session:
        booked = dict(
            session.execute(
                select(LedgerEntry.reference, LedgerEntry.points).where(
                    LedgerEntry.reference.like("t-%")
                )
            ).all()
        )
        subscription_net = dict(
            session.execute(
                select(Customer.email, func.sum(LedgerEntry.points))
                .join(LedgerEntry, LedgerEntry.customer_id == Customer.id)
                .where(LedgerEntry.reason == "subscription")
                .group_by(Customer.email)
            ).all()
        )
    assert booked == accepted
    assert any(points < 0 for points in accepted.values()), "no debit succeeded: a weak test"
    balances = _balances(services)
    for buyer in buyers:
        spent = sum(
            p for (k, who, p, ref) in plan if k == "rest" and who == buyer["id"] and ref in accepted
        )
        assert balances[buyer["id"]] == 50 + spent >= 0
    # A reader's net reward is the list's reward or nothing: never a multiple of it.
    assert all(net in (0, LIST_REWARD) for net in subscription_net.values()), subscription_net
    assert "All 7 balances match" in _verify_ledger(app)


def test_ledger_verify_names_a_customer_whose_balance_drifted(
    app: Flask, services: Services, database_url: str
) -> None:
    with services.db.transaction() as session:
        customer = services.loyalty.create_customer(session, {"email": "jana@example.com"})
        services.loyalty.post_transaction(session, customer, 40, "order")
        session.execute(text("UPDATE customer SET balance = 55"))

    result = app.test_cli_runner().invoke(cli, ["ledger", "verify"])

    assert result.exit_code == 1
    assert "jana@example.com" in result.output and "balance 55" in result.output
    assert "ledger sums to 40" in result.output and "1 of 1 customers" in result.output


def test_the_database_itself_refuses_a_negative_balance(services: Services) -> None:
    from sqlalchemy.exc import IntegrityError

    with services.db.transaction() as session:
        services.loyalty.create_customer(session, {"email": "jana@example.com"})
    with pytest.raises(IntegrityError), services.db.transaction() as session:
        session.execute(text("UPDATE customer SET balance = -1"))


def test_identical_patches_at_once_announce_a_tier_change_once(
    shop: Shop, services: Services
) -> None:
    """The old tier is read under the customer's lock: concurrent identical PATCHes each saw
    the old tier on PostgreSQL and each sent tier-changed."""
    customer = _create(shop, "tiered@example.com")

    def patch(body: dict[str, Any]) -> Callable[[], requests.Response]:
        url = f"{shop.url}/api/customers/{customer['id']}"
        return lambda: _client().patch(url, json=body, headers=shop.auth, timeout=60)

    for body in ({"tier_id": "2"}, {"referrals": 3}):
        assert _statuses(_in_parallel([patch(body)] * 12)) == Counter({200: 12})

    with services.db.read() as session:
        announced = Counter(
            session.scalars(
                select(OutboxMessage.event_type).where(
                    OutboxMessage.customer_id == customer["id"],
                    OutboxMessage.event_type.in_(["tier-changed", "referral-completed"]),
                )
            )
        )
    assert announced == Counter({"tier-changed": 1, "referral-completed": 1})


def test_export_restarts_at_once_leave_one_export_to_run(shop: Shop, services: Services) -> None:
    """A double-click on "Start over" (or a retrying script) must not export everyone twice."""
    services.integrations.install(services.db, "dry")  # a never-installed one exports nothing
    url = f"{shop.url}/api/integrations/dry/export"

    def restart() -> requests.Response:
        return _client().post(url, json={"restart": True}, headers=shop.auth, timeout=60)

    assert set(_statuses(_in_parallel([restart] * 12))) <= {200, 202}

    with services.db.read() as session:
        unfinished = session.scalar(
            select(func.count())
            .select_from(ExportJob)
            .where(ExportJob.status.in_(["queued", "running", "failed"]))
        )
    assert unfinished == 1


def test_an_export_cancelled_while_it_starts_stays_cancelled(
    shop: Shop, services: Services
) -> None:
    """The runner read its job as queued; a restart cancelled it and committed; the runner's
    start must see that, not write "running" over it and run beside the new export."""
    if not services.db.is_postgres:
        pytest.skip("SQLite runs one writer at a time: a cancel cannot land mid-start")
    services.integrations.install(services.db, "dry")
    job_id = queue_export(services.db, _integration_id(services)).id
    with services.db.transaction() as session:
        job = session.get(ExportJob, job_id)
        assert job is not None and job.status == "queued"
        cancel_export(services.db, job.integration_id)  # another connection, committed
        start(session, job)
    with services.db.read() as session:
        assert session.get(ExportJob, job_id).status == "cancelled"


def _integration_id(services: Services) -> int:
    with services.db.read() as session:
        return services.integrations.get(session, "dry").id
