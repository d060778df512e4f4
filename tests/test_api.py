"""The REST API as the shop's systems use it, including every 4xx path."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from flask.testing import FlaskClient

JSON = {"Content-Type": "application/json"}


def _create(client: FlaskClient, auth: dict[str, str], email: str = "jana@example.com", **fields):
    response = client.post("/api/customers", json={"email": email, **fields}, headers=auth)
    assert response.status_code == 201, response.json
    return response.json


def _error(response) -> dict:
    body = response.json
    assert set(body) >= {"code", "message", "errors"}, body
    return body


def test_a_replayed_reference_answers_what_the_first_request_was_answered(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    """A shop system retrying a timed-out request gets the first answer again, as the README
    says: the balance after that transaction, not the balance now (it answered 600 for 400)."""
    customer = _create(client, auth, "retry@example.com")
    url = f"/api/customers/{customer['id']}/transactions"
    first = client.post(
        url, json={"points": 400, "reason": "order", "reference": "a"}, headers=auth
    )
    client.post(url, json={"points": 200, "reason": "order", "reference": "b"}, headers=auth)

    replay = client.post(
        url, json={"points": 400, "reason": "order", "reference": "a"}, headers=auth
    )

    assert replay.status_code == 200 and replay.json["replayed"] is True
    assert {k: v for k, v in replay.json.items() if k != "replayed"} == {
        k: v for k, v in first.json.items() if k != "replayed"
    }
    assert replay.json["balance"] == 400


def test_customer_lifecycle(client: FlaskClient, auth: dict[str, str]) -> None:
    created = _create(client, auth, "Jana@Example.com", first_name="Jana", external_id="c-1")
    assert created["email"] == "jana@example.com"
    assert created["balance"] == 0
    assert created["referral_link"].endswith("/r/" + created["referral_code"])

    expires = (date.today() + timedelta(days=30)).isoformat()
    credit = client.post(
        f"/api/customers/{created['id']}/transactions",
        json={"points": 120, "reason": "order", "reference": "o-1", "expires_at": expires},
        headers=auth,
    )
    assert credit.status_code == 201
    assert credit.json["balance"] == 120 and credit.json["replayed"] is False

    replay = client.post(
        f"/api/customers/{created['id']}/transactions",
        json={"points": 120, "reason": "order", "reference": "o-1", "expires_at": expires},
        headers=auth,
    )
    assert replay.status_code == 200 and replay.json["replayed"] is True

    patched = client.patch(
        f"/api/customers/{created['id']}",
        json={"tier_id": "gold", "tier_name": "Gold", "missions": 3, "registered": True},
        headers=auth,
    )
    assert patched.status_code == 200
    assert (patched.json["tier_name"], patched.json["missions"]) == ("Gold", 3)

    pin = client.put(f"/api/customers/{created['id']}/pin", json={}, headers=auth)
    assert pin.status_code == 200 and len(pin.json["pin"]) == 6
    chosen = client.put(f"/api/customers/{created['id']}/pin", json={"pin": "4321"}, headers=auth)
    assert chosen.json["pin"] == "4321"

    got = client.get(f"/api/customers/{created['id']}", headers=auth).json
    assert got["balance"] == 120
    assert got["next_expiration_date"] == expires and got["next_expiration_points"] == 120
    assert got["last_change_points"] == 120 and got["pin"] == "4321"

    ledger = client.get(f"/api/customers/{created['id']}/ledger", headers=auth).json
    assert [e["points"] for e in ledger["items"]] == [120]


def test_customers_are_listed_in_keyset_pages_and_found_by_email(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    ids = [_create(client, auth, f"c{n}@example.com")["id"] for n in range(5)]
    first = client.get("/api/customers?limit=2", headers=auth).json
    assert [c["id"] for c in first["items"]] == ids[:2]
    second = client.get(f"/api/customers?limit=2&after={first['next_after']}", headers=auth).json
    assert [c["id"] for c in second["items"]] == ids[2:4]
    last = client.get(f"/api/customers?limit=2&after={second['next_after']}", headers=auth).json
    assert [c["id"] for c in last["items"]] == ids[4:] and last["next_after"] is None
    found = client.get("/api/customers?email=C3@EXAMPLE.com", headers=auth).json
    assert [c["id"] for c in found["items"]] == [ids[3]]


@pytest.mark.parametrize("limit", ["\u0662", "1_0", "2.0", " "])
def test_a_page_size_is_ascii_digits(client: FlaskClient, auth: dict[str, str], limit: str) -> None:
    """A query string's number is read as the CSV import reads one: int() took Arabic-Indic
    digits and 1_0."""
    answer = client.get("/api/customers", query_string={"limit": limit}, headers=auth)
    assert answer.status_code == 422 and "limit" in answer.json["errors"], answer.json


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}],
    ids=["missing", "unknown", "wrong-scheme"],
)
def test_requests_without_a_valid_token_are_refused(client: FlaskClient, headers) -> None:
    response = client.get("/api/customers", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert _error(response)["code"] == "unauthorized"


def test_malformed_json_is_a_400_naming_the_problem(client: FlaskClient, auth) -> None:
    response = client.post("/api/customers", data='{"email": "a@b.cz",}', headers={**auth, **JSON})
    assert response.status_code == 400
    assert "not valid JSON" in _error(response)["message"]
    assert "line 1" in response.json["message"]


@pytest.mark.parametrize(
    "body,field",
    [
        ({}, "email"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@b.cz", "missions": -1}, "missions"),
        ({"email": "a@b.cz", "pin": "12"}, "pin"),
        ({"email": "a@b.cz", "pin": "1234\n"}, "pin"),
        ({"email": "a@b.cz", "first_name": "nul\x00byte"}, "first_name"),
    ],
)
def test_invalid_customers_are_422_naming_the_field(client, auth, body, field) -> None:
    response = client.post("/api/customers", json=body, headers=auth)
    assert response.status_code == 422
    error = _error(response)
    assert field in error["errors"] or field in str(error["errors"])


def test_duplicates_are_409(client: FlaskClient, auth) -> None:
    _create(client, auth, "a@b.cz", external_id="x-1")
    assert client.post("/api/customers", json={"email": "A@b.cz"}, headers=auth).status_code == 409
    clash = client.post(
        "/api/customers", json={"email": "c@d.cz", "external_id": "x-1"}, headers=auth
    )
    assert clash.status_code == 409
    other = _create(client, auth, "c@d.cz")
    moved = client.patch(f"/api/customers/{other['id']}", json={"email": "a@b.cz"}, headers=auth)
    assert moved.status_code == 409 and "a@b.cz" in moved.json["message"]


COMPOSED, DECOMPOSED = "jan\u00e1k@example.cz", "jana\u0301k@example.cz"  # "janák" both


def test_an_address_typed_composed_or_decomposed_is_one_customer(client, auth) -> None:
    """Browsers and platforms send an accented letter either as one code point or as a
    letter and a combining accent; it is one address, stored composed (NFC)."""
    created = _create(client, auth, DECOMPOSED)
    assert created["email"] == COMPOSED
    again = client.post("/api/customers", json={"email": COMPOSED}, headers=auth)
    assert again.status_code == 409
    for typed in (COMPOSED, DECOMPOSED):
        found = client.get("/api/customers", query_string={"email": typed}, headers=auth).json
        assert [c["id"] for c in found["items"]] == [created["id"]]


def test_unknown_customers_are_404(client: FlaskClient, auth) -> None:
    for method, path, body in [
        ("get", "/api/customers/999", None),
        ("patch", "/api/customers/999", {"first_name": "X"}),
        ("post", "/api/customers/999/transactions", {"points": 5, "reason": "order"}),
        ("put", "/api/customers/999/pin", {}),
        ("get", "/api/customers/999/ledger", None),
        ("get", "/api/customers/99999999999999999999999", None),
    ]:
        response = getattr(client, method)(path, json=body, headers=auth)
        assert response.status_code == 404, (method, path)
        assert _error(response)["code"] == "not_found"


@pytest.mark.parametrize(
    "body,status,fragment",
    [
        ({"points": -10, "reason": "order"}, 409, "balance is 5"),
        ({"points": 0, "reason": "order"}, 422, "points"),
        ({"points": "5", "reason": "order"}, 422, "points"),
        ({"points": 5}, 422, "reason"),
        ({"points": 5, "reason": "Bad Reason"}, 422, "reason"),
        ({"points": 5, "reason": "order", "expires_at": "2000-01-01"}, 422, "expires_at"),
        ({"points": -1, "reason": "order", "expires_at": "2999-01-01"}, 422, "expires_at"),
        ({"points": 10**12, "reason": "order"}, 422, "points"),
        ({"points": 5, "reason": "order", "reference": "r-1"}, 200, ""),
        ({"points": 6, "reason": "order", "reference": "r-1"}, 409, "r-1"),
        ({"points": 5, "reason": "order\n"}, 422, "reason"),
        # pointbridge's own references: taking one would block that night's expiry run.
        ({"points": 5, "reason": "order", "reference": "expiration:2030-01-01"}, 422, "reserved"),
        ({"points": 5, "reason": "order", "reference": "import"}, 422, "reserved"),
    ],
)
def test_transaction_refusals(client, auth, body, status, fragment) -> None:
    customer = _create(client, auth)
    path = f"/api/customers/{customer['id']}/transactions"
    assert (
        client.post(
            path, json={"points": 5, "reason": "order", "reference": "r-1"}, headers=auth
        ).status_code
        == 201
    )
    response = client.post(path, json=body, headers=auth)
    assert response.status_code == status, response.json
    if status != 200:
        error = _error(response)
        assert fragment in error["message"] or fragment in str(error["errors"])
    assert client.get(f"/api/customers/{customer['id']}", headers=auth).json["balance"] == 5


def test_the_openapi_document_describes_the_api(client: FlaskClient) -> None:
    spec = client.get("/api/openapi.json").json
    assert spec["info"]["title"] == "pointbridge"
    assert "/api/customers/{customer_id}/transactions" in spec["paths"]
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
