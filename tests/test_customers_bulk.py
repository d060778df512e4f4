"""`POST /api/customers/bulk`: many customers at once, by the import's rules, idempotent."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from pointbridge.services import Services
from pointbridge.storage.models import Customer, LedgerEntry, OutboxMessage
from pointbridge.web.api.bulk import MAX_ITEMS

FUTURE = (date.today() + timedelta(days=365)).isoformat()
NDJSON = "application/x-ndjson"


def _bulk(
    client: FlaskClient, auth: dict[str, str], body: Any, content_type: str = "application/json"
) -> Any:
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(
        "/api/customers/bulk", data=data, headers={**auth, "Content-Type": content_type}
    )


def _ndjson(items: list[Any]) -> str:
    return "".join(json.dumps(item) + "\n" for item in items)


def _count(services: Services, model: type) -> int:
    with services.db.read() as session:
        return session.scalar(select(func.count()).select_from(model))


def _add_integration(services: Services, tmp_path) -> None:
    with services.db.transaction() as session:
        services.integrations.add(session, "dry", "jsonl", {"path": str(tmp_path / "o.jsonl")})


CUSTOMERS = [
    {"email": "jana@example.com", "first_name": "Jana", "pin": "S3cretPin", "points": 120,
     "expires_at": FUTURE},
    {"email": "petr@example.com", "missions": -5},
    {"email": "eva@example.com", "registered": True},
    {"email": "JANA@example.com", "first_name": "Twice"},
]  # fmt: skip


@pytest.mark.parametrize("content_type", ["application/json", NDJSON])
def test_each_customer_gets_a_result_in_the_order_sent_and_a_resend_changes_nothing(
    client, auth, services, tmp_path, content_type
) -> None:
    _add_integration(services, tmp_path)
    body = CUSTOMERS if content_type == "application/json" else _ndjson(CUSTOMERS)
    first = _bulk(client, auth, body, content_type)
    assert first.status_code == 200, first.json
    statuses = [(item["index"], item["status"]) for item in first.json["items"]]
    assert statuses == [(0, "created"), (1, "error"), (2, "created"), (3, "error")]
    assert first.json["items"][3]["errors"] == {
        "email": ["email jana@example.com is on an earlier item too: each customer once."]
    }
    assert (first.json["created"], first.json["errors"]) == (2, 2)
    single = client.post("/api/customers", json=CUSTOMERS[1], headers=auth)
    assert first.json["items"][1]["errors"] == single.json["errors"]
    outbox = _count(services, OutboxMessage)
    assert outbox == 2  # one contact update each, no events

    again = _bulk(client, auth, body, content_type)
    assert [item["status"] for item in again.json["items"]] == [
        "unchanged",
        "error",
        "unchanged",
        "error",
    ]
    assert [i["id"] for i in again.json["items"]] == [i["id"] for i in first.json["items"]]
    assert _count(services, OutboxMessage) == outbox
    with services.db.read() as session:
        jana = session.scalar(select(Customer).where(Customer.email == "jana@example.com"))
        assert (jana.first_name, jana.balance) == ("Jana", 120)
    assert _count(services, LedgerEntry) == 1


def test_a_changed_customer_is_updated_and_events_are_opt_in(
    client, auth, services, tmp_path
) -> None:
    _add_integration(services, tmp_path)
    _bulk(client, auth, [{"email": "a@x.cz", "pin": "1234"}])
    response = client.post(
        "/api/customers/bulk?events=true",
        json=[{"email": "a@x.cz", "pin": "9876", "points": 10}],
        headers=auth,
    )
    assert response.json["items"][0]["status"] == "updated"
    with services.db.read() as session:
        events = sorted(
            session.scalars(
                select(OutboxMessage.event_type).where(OutboxMessage.event_type.is_not(None))
            )
        )
    assert events == ["credit-changed", "pin-changed"]


def test_events_queue_what_the_single_customer_api_would_once(
    client, auth, services, tmp_path
) -> None:
    """The bulk endpoint writes through the import's writer: with events=true, a tier moved, a
    referral completed and a reward threshold crossed are announced as a PATCH and a credit
    announce them, and the same body again announces nothing."""
    with services.db.transaction() as session:
        services.integrations.add(
            session, "dry", "jsonl", {"path": str(tmp_path / "o.jsonl"), "reward_thresholds": "100"}
        )
    _bulk(client, auth, [{"email": "a@x.cz", "tier_id": "2", "tier_name": "Silver"}])
    body = [{"email": "a@x.cz", "tier_id": "1", "tier_name": "Bronze", "referrals": 1,
             "points": 150}]  # fmt: skip

    def events() -> list[tuple[str, dict[str, Any]]]:
        with services.db.read() as session:
            rows = session.execute(
                select(OutboxMessage.event_type, OutboxMessage.payload)
                .where(OutboxMessage.event_type.is_not(None))
                .order_by(OutboxMessage.id)
            )
            return [(event, payload) for event, payload in rows]

    for _ in range(2):
        response = client.post("/api/customers/bulk?events=true", json=body, headers=auth)
        assert response.status_code == 200, response.json
        assert events() == [
            ("tier-changed", {"old_tier_id": "2", "old_tier_name": "Silver", "new_tier_id": "1",
                              "new_tier_name": "Bronze", "direction": "down"}),
            ("referral-completed", {"referrals": 1, "added": 1}),
            ("credit-changed", {"points": 150, "balance": 150, "reason": "import"}),
            ("reward-available", {"threshold": 100, "balance": 150}),
        ]  # fmt: skip


def test_an_external_id_of_another_customer_is_that_items_error(client, auth, services) -> None:
    client.post("/api/customers", json={"email": "a@x.cz", "external_id": "E1"}, headers=auth)
    clash = client.post(
        "/api/customers", json={"email": "b@x.cz", "external_id": "E1"}, headers=auth
    )
    response = _bulk(client, auth, [{"email": "b@x.cz", "external_id": "E1"}, {"email": "c@x.cz"}])
    assert response.status_code == 200
    first, second = response.json["items"]
    assert first["errors"] == {"external_id": [clash.json["message"]]}
    assert second["status"] == "created"
    assert _count(services, Customer) == 2


def test_the_full_ten_thousand_are_taken_and_one_more_is_refused_naming_the_limit(
    client, auth, services
) -> None:
    # Over the app's 1 MB body limit: the bulk body is read as it arrives, not at once.
    items = [{"email": f"c{n}@example.com", "first_name": "N" * 100} for n in range(MAX_ITEMS)]
    body = _ndjson(items)
    assert len(body) > 1024 * 1024
    assert _bulk(client, auth, body, NDJSON).json["created"] == MAX_ITEMS

    over = _bulk(client, auth, [{"email": "x@x.cz"}] * (MAX_ITEMS + 1))
    assert over.status_code == 413 and "10,000" in over.json["message"]
    assert _count(services, Customer) == MAX_ITEMS


BROKEN = {
    "ndjson line": ('{"email": "a@x.cz"}\n{"email": \n', NDJSON, "Line 2: not JSON"),
    "array item": ('[{"email": "a@x.cz"},\n {"email" 1}]', "application/json", "Line 2: not JSON"),
    "not an array": ('{"email": "a@x.cz"}', "application/json", "Line 1: the body is not"),
    "text after": ("[]\n[]", "application/json", "Line 2: text after the array"),
    "deep": ("[" + "[" * 100_000, "application/json", "nested more than 32 levels"),
    "deep ndjson": ("[" * 50 + "]" * 50, NDJSON, "Line 1: The request body is JSON nested"),
    "not utf-8": (b'[{"email": "\xe9@x.cz"}]', "application/json", "Line 1: not UTF-8"),
    "cut short": ('[{"email": "a@x.cz"}', "application/json", "Line 1: the body ends before"),
    "huge number": ("[" + "1" * 5000 + "]", "application/json", "longer than 4300 digits"),
    "huge item": ('[{"email": "' + "x" * 100_000 + '"}]', "application/json", "over 64 KiB"),
    "huge line": ('{"email": "' + "x" * 100_000 + '"}\n', NDJSON, "Line 1: one customer"),
}


@pytest.mark.parametrize("name", BROKEN)
def test_a_broken_body_is_a_4xx_naming_the_line_and_writes_nothing(
    client, auth, services, name
) -> None:
    body, content_type, expected = BROKEN[name]
    response = _bulk(client, auth, body, content_type)
    assert response.status_code in (400, 413), response.json
    assert expected in response.json["message"]
    assert _count(services, Customer) == 0


@pytest.mark.parametrize("content_type", ["application/json", NDJSON])
def test_a_body_that_starts_with_a_byte_order_mark_is_read_as_without_it(
    client, auth, services, content_type
) -> None:
    """Windows tools (Notepad, PowerShell's UTF8 encoding) write one; JSON allows a reader to
    ignore it, and the CSV import already does."""
    items = [{"email": "jana@example.com"}, {"email": "petr@example.com"}]
    text = json.dumps(items) if content_type == "application/json" else _ndjson(items)
    response = _bulk(client, auth, "\ufeff".encode() + text.encode(), content_type)
    assert response.status_code == 200, response.json
    assert response.json["created"] == 2
    assert _count(services, Customer) == 2


HOSTILE_ITEMS = [
    {"email": ["a@x.cz"]},
    {"email": {"$ne": None}},
    {"email": "a@x.cz", "missions": "7; DROP TABLE customer"},
    {"email": "b@x.cz", "missions": 99999999999},
    {"email": "c@x.cz", "first_name": "x" * 60_000},
    {"email": "d@x.cz", "last_name": "nul\x00"},
    {"email": "e@x.cz", "tier_id": "\ud83d"},
    {"email": "f@x.cz", "points": -1},
    {"email": "g@x.cz", "unknown": 1},
    {"email": "h@x.cz", "registered": [[[[[[]]]]]]},
    None,
    "a@x.cz",
    [],
]


def test_hostile_items_are_each_an_error_never_a_500(client, auth, services) -> None:
    response = _bulk(client, auth, HOSTILE_ITEMS)
    assert response.status_code == 200
    assert [item["status"] for item in response.json["items"]] == ["error"] * len(HOSTILE_ITEMS)
    assert _count(services, Customer) == 0


def test_auth_and_content_type_are_checked(client, auth) -> None:
    assert client.post("/api/customers/bulk", json=[]).status_code == 401
    bad = {"Authorization": "Bearer nope"}
    assert client.post("/api/customers/bulk", json=[], headers=bad).status_code == 401
    assert _bulk(client, auth, "email\na@x.cz\n", "text/csv").status_code == 415
    assert _bulk(client, auth, []).json["items"] == []


def test_the_openapi_document_describes_both_body_types(client) -> None:
    operation = client.get("/api/openapi.json").json["paths"]["/api/customers/bulk"]["post"]
    assert set(operation["requestBody"]["content"]) == {"application/json", NDJSON}
    assert {"200", "400", "413"} <= set(operation["responses"])
