"""What one API transaction or webhook costs the database, and the token cache that keeps
token checks off it. The statement counts are ceilings: a change that adds a read or a
SAVEPOINT to every request fails here, not only in ``bench/api.py``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import time_machine
from flask.testing import FlaskClient
from sqlalchemy import delete, func, select

from pointbridge.access.tokens import CACHE_TTL
from pointbridge.loyalty.rules import InsufficientPoints
from pointbridge.services import Services
from pointbridge.storage.models import ApiToken, LedgerEntry, OutboxMessage, PointLot

# A credit: the ledger row, the balance, the lot, the integrations to queue for, their outbox
# rows, and SQLite's BEGIN IMMEDIATE (PostgreSQL's BEGIN is no statement of its own; there the
# first three are one statement).
CREDIT_STATEMENTS = 6
# A debit takes from the open lots, in one statement, instead of adding one.
DEBIT_STATEMENTS = 6
# A webhook reads its integration (one statement, no transaction around it), then locks the
# customer, reads and writes the membership, and makes the credit.
WEBHOOK_STATEMENTS = 10


@pytest.fixture
def clock() -> Iterator[time_machine.Coordinates]:
    with time_machine.travel(datetime(2025, 3, 10, 12, 0, tzinfo=UTC), tick=False) as frozen:
        yield frozen


@pytest.fixture
def hook(services: Services, tmp_path: Path) -> str:
    """A jsonl integration (it takes events) with list 1 worth 50 points; its webhook path."""
    with services.db.transaction() as session:
        row = services.integrations.add(
            session, "dry", "jsonl", {"path": str(tmp_path / "o.jsonl"), "list_rewards": "1:50"}
        )
        return urlsplit(services.integrations.webhook_url(row)).path


@pytest.fixture
def customer_id(client: FlaskClient, auth: dict[str, str], hook: str) -> int:
    response = client.post("/api/customers", json={"email": "jana@example.com"}, headers=auth)
    return response.json["id"]


def _post(client: FlaskClient, auth: dict[str, str], customer_id: int, points: int, **extra: Any):
    return client.post(
        f"/api/customers/{customer_id}/transactions",
        json={"points": points, "reason": "order", **extra},
        headers=auth,
    )


def _no_savepoint_and_no_customer_read(statements: list[str]) -> None:
    assert not [s for s in statements if "SAVEPOINT" in s.upper()]
    assert not [s for s in statements if s.lstrip().upper().startswith("SELECT CUSTOMER.")]


def test_a_credit_and_a_debit_take_a_handful_of_statements_in_one_write_transaction(
    client: FlaskClient,
    auth: dict[str, str],
    customer_id: int,
    sql_statements: list[str],
    services: Services,
) -> None:
    sql_statements.clear()
    credit = _post(client, auth, customer_id, 100, reference="order-1")
    assert credit.status_code == 201 and credit.json["balance"] == 100
    assert len(sql_statements) <= CREDIT_STATEMENTS, sql_statements
    _no_savepoint_and_no_customer_read(sql_statements)
    assert sum(s.startswith("BEGIN") for s in sql_statements) <= 1  # the token came from cache

    sql_statements.clear()
    debit = _post(client, auth, customer_id, -30)
    assert debit.status_code == 201 and debit.json["balance"] == 70
    assert len(sql_statements) <= DEBIT_STATEMENTS, sql_statements
    _no_savepoint_and_no_customer_read(sql_statements)

    with services.db.read() as session:
        assert session.scalar(select(PointLot.remaining)) == 70
        kinds = session.execute(
            select(OutboxMessage.kind, OutboxMessage.payload).order_by(OutboxMessage.id)
        ).all()
    # Each change queued its contact update and its event, in that order.
    assert [kind for kind, _ in kinds[-4:]] == ["contact", "event", "contact", "event"]
    assert kinds[-1].payload == {"points": -30, "balance": 70, "reason": "order"}


def test_a_webhook_credit_takes_a_handful_of_statements(
    client: FlaskClient, hook: str, customer_id: int, sql_statements: list[str]
) -> None:
    sql_statements.clear()
    subscription = {"email": "jana@example.com", "list_id": "1", "subscribed": True}
    response = client.post(hook, json=subscription)
    assert response.status_code == 200 and "+50" in response.json["message"]
    assert len(sql_statements) <= WEBHOOK_STATEMENTS, sql_statements
    assert not [s for s in sql_statements if "SAVEPOINT" in s.upper()]


def test_a_replayed_reference_answers_the_first_entry_as_first_answered(
    client: FlaskClient, auth: dict[str, str], customer_id: int
) -> None:
    first = _post(client, auth, customer_id, 40, reference="order-7")
    _post(client, auth, customer_id, 5)

    again = _post(client, auth, customer_id, 40, reference="order-7")

    assert again.status_code == 200
    # The balance is the one the first request was answered, not the balance now (45).
    assert again.json == {**first.json, "balance": 40, "replayed": True}
    assert _post(client, auth, 999, 40, reference="order-7").status_code == 404


def test_a_refused_debit_leaves_nothing_behind_for_a_caller_that_goes_on(
    services: Services, customer_id: int
) -> None:
    loyalty = services.loyalty
    with services.db.transaction() as session:
        loyalty.post_transaction(session, customer_id, 10, "order")
        with pytest.raises(InsufficientPoints, match="balance is 10"):
            loyalty.post_transaction(session, customer_id, -11, "order", reference="too-much")
        loyalty.post_transaction(session, customer_id, -4, "order")

    with services.db.read() as session:
        assert session.scalars(select(LedgerEntry.points).order_by(LedgerEntry.id)).all() == [
            10,
            -4,
        ]
        assert session.scalar(select(func.sum(PointLot.remaining))) == 6


def test_a_token_revoked_elsewhere_stops_working_within_the_cache_ttl(
    client: FlaskClient,
    auth: dict[str, str],
    services: Services,
    clock: time_machine.Coordinates,
    sql_statements: list[str],
) -> None:
    assert client.get("/api/customers", headers=auth).status_code == 200
    # Another process (``tokens revoke`` while the server runs) deletes the row: this one
    # cannot know until it looks again.
    with services.db.transaction() as session:
        session.execute(delete(ApiToken))
    sql_statements.clear()

    clock.shift(CACHE_TTL - timedelta(seconds=1))
    assert client.get("/api/customers", headers=auth).status_code == 200
    assert not [s for s in sql_statements if "api_token" in s]

    clock.shift(timedelta(seconds=1))
    refused = client.get("/api/customers", headers=auth)
    assert refused.status_code == 401
    assert refused.json["message"] == "The API token is not valid."
