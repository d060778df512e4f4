"""A number the API takes in JSON is a JSON integer: 10.5, true, "10" and 1e3 are refused
with the transactions endpoint's words, never truncated or read as another number, by the
bulk API (per customer, naming the field) and the customer endpoints alike; nothing of a
refused customer is written."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from pointbridge.services import Services
from pointbridge.storage.models import Customer, LedgerEntry

NOT_INTEGERS = ["10.5", "true", '"10"', "1e3", "1000.0"]
NDJSON = "application/x-ndjson"


def _count(services: Services, model: type) -> int:
    with services.db.read() as session:
        return session.scalar(select(func.count()).select_from(model))


def _transaction_refusal(client: FlaskClient, auth: dict[str, str], points: str) -> tuple[int, Any]:
    """What the single transactions endpoint answers for ``points`` (written as JSON text),
    and the id of the customer it was posted for."""
    created = client.post("/api/customers", json={"email": "single@example.com"}, headers=auth)
    customer_id = created.json["id"]
    answer = client.post(
        f"/api/customers/{customer_id}/transactions",
        data=f'{{"points": {points}, "reason": "order"}}',
        headers={**auth, "Content-Type": "application/json"},
    )
    assert answer.status_code == 422, answer.json
    return customer_id, answer.json["errors"]["points"]


@pytest.mark.parametrize("content_type", ["application/json", NDJSON])
@pytest.mark.parametrize("field", ["points", "missions", "points_to_next_tier"])
def test_bulk_refuses_a_number_that_is_not_a_json_integer_per_customer(
    client: FlaskClient, auth: dict[str, str], services: Services, content_type: str, field: str
) -> None:
    _, refusal = _transaction_refusal(client, auth, "10.5")
    items = [f'{{"email": "c{i}@example.com", "{field}": {v}}}' for i, v in enumerate(NOT_INTEGERS)]
    items.append('{"email": "ok@example.com", "points": 10}')
    body = "[" + ",".join(items) + "]" if content_type != NDJSON else "\n".join(items)
    customers, entries = _count(services, Customer), _count(services, LedgerEntry)

    answer = client.post(
        "/api/customers/bulk", data=body, headers={**auth, "Content-Type": content_type}
    )

    assert answer.status_code == 200, answer.json
    results = answer.json["items"]
    for index, points in enumerate(NOT_INTEGERS):
        assert results[index]["status"] == "error", (points, results[index])
        assert results[index]["errors"] == {field: refusal}, points
    assert results[-1]["status"] == "created"
    assert (answer.json["errors"], answer.json["created"]) == (len(NOT_INTEGERS), 1)
    assert _count(services, Customer) == customers + 1
    assert _count(services, LedgerEntry) == entries + 1  # the valid customer's 10 only


@pytest.mark.parametrize("value", NOT_INTEGERS)
def test_the_transactions_endpoint_and_customers_refuse_them_in_the_same_words(
    client: FlaskClient, auth: dict[str, str], services: Services, value: str
) -> None:
    customer_id, refusal = _transaction_refusal(client, auth, value)
    assert refusal == ["Not a valid integer."]
    json_headers = {**auth, "Content-Type": "application/json"}
    created = client.post(
        "/api/customers",
        data=f'{{"email": "jana@example.com", "missions": {value}}}',
        headers=json_headers,
    )
    assert created.status_code == 422, created.json
    assert created.json["errors"] == {"missions": refusal}
    patched = client.patch(
        f"/api/customers/{customer_id}",
        data=f'{{"points_to_next_tier": {value}}}',
        headers=json_headers,
    )
    assert patched.status_code == 422, patched.json
    assert patched.json["errors"] == {"points_to_next_tier": refusal}
    assert _count(services, Customer) == 1  # the one _transaction_refusal made
