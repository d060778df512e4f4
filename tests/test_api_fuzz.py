"""Fuzzing the REST API: whatever it is sent, never a 5xx, and a refused request changes nothing.

schemathesis turns /api/openapi.json into hypothesis strategies (valid requests and requests
that break the spec), on SQLite and PostgreSQL. The inputs that once gave 500s are named cases
below. ``POINTBRIDGE_FUZZ_EXAMPLES=2000 pytest -m fuzz`` searches longer (core.testing.fuzz).
"""

from __future__ import annotations

import sys
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st
from marshmallow import Schema
from schemathesis import Case
from schemathesis.generation import GenerationMode
from werkzeug.test import TestResponse

from pointbridge.services import Services
from pointbridge.testing.fuzz import (
    assert_harmless,
    encoded,
    fingerprint,
    fuzz_settings,
    hostile_values,
    mostly,
    tainted,
)
from pointbridge.web.api.schemas import CustomerCreate, CustomerUpdate, PinIn, TransactionIn

pytestmark = pytest.mark.fuzz
JSON = "application/json"

OPERATIONS = [
    "POST /api/customers",
    "GET /api/customers",
    "GET /api/customers/{customer_id}",
    "PATCH /api/customers/{customer_id}",
    "POST /api/customers/{customer_id}/transactions",
    "PUT /api/customers/{customer_id}/pin",
    "GET /api/customers/{customer_id}/ledger",
    "POST /api/customers/bulk",
]


@pytest.fixture
def customer_id(services: Services) -> int:
    """A customer with 100 points, so debits, PINs and ledgers have someone real to hit."""
    with services.db.transaction() as session:
        customer = services.loyalty.create_customer(session, {"email": "fuzz@example.com"})
        services.loyalty.post_transaction(session, customer, 100, "order")
        return customer.id


def cases(operation: Any, customer_id: int) -> st.SearchStrategy[Case]:
    """Valid and spec-breaking requests, half of them aimed at the existing customer."""
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    strategies = [operation.as_strategy(mode) for mode in modes]
    if "{customer_id}" in operation.path:
        known = {"customer_id": customer_id}
        strategies += [operation.as_strategy(mode, path_parameters=known) for mode in modes]
    return st.one_of(strategies)


# schemathesis' own pytest plugin does not run under pytest 9 yet, so each operation's
# hypothesis strategy is driven directly.
@pytest.mark.parametrize("label", OPERATIONS)
def test_no_input_makes_the_api_fail_or_write(
    label: str, app: Flask, services: Services, auth: dict[str, str], customer_id: int
) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    found = {
        f"{op.method.upper()} {op.path}": op
        for op in (result.ok() for result in schema.get_all_operations())
        # The management operations are fuzzed in test_management_fuzz.py.
        if op.path.startswith("/api/customers")
    }
    assert set(found) == set(OPERATIONS), "the spec gained or lost an operation: update the list"

    @given(case=cases(found[label], customer_id))
    @fuzz_settings(ci_examples=50)
    def never_a_server_error(case: Case) -> None:
        before = fingerprint(services.db)
        response = case.call(headers=auth)
        assert_harmless(services.db, before, response.status_code, response.text)

    never_a_server_error()


def _unique(template: str) -> st.SearchStrategy[str]:
    # Unique values, so a create is not refused as a duplicate before it reaches the database.
    return st.integers(0, 10**9).map(template.format)


# A valid value for every field a request body takes; the fuzzer keeps, taints or replaces each.
VALID_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "email": _unique("c{}@example.com"),
    "external_id": _unique("shop-{}"),
    "first_name": st.just("Jana"),
    "last_name": st.just("Nová"),
    "registered": st.booleans(),
    "marketing_consent": st.booleans(),
    "tier_id": st.just("gold"),
    "tier_name": st.just("Gold"),
    "missions": st.just(1),
    "rewards": st.just(2),
    "referrals": st.just(3),
    "tier_expires_at": st.just("2999-01-01"),
    "points_to_next_tier": st.just(250),
    "pin": st.just("1234"),
    "points": st.sampled_from([5, -5]),
    "reason": st.just("order"),
    "reference": _unique("order-{}"),
    "expires_at": st.just("2999-01-01"),
}
TEXT_FIELDS = {"email", "external_id", "first_name", "last_name", "tier_id", "tier_name"}
TEXT_FIELDS |= {"pin", "reason", "reference", "expires_at", "tier_expires_at"}
BODIES: dict[str, type[Schema]] = {
    "POST /api/customers": CustomerCreate,
    "PATCH /api/customers/{id}": CustomerUpdate,
    "POST /api/customers/{id}/transactions": TransactionIn,
    "PUT /api/customers/{id}/pin": PinIn,
}


def hostile_field(name: str) -> st.SearchStrategy[tuple[str, Any]]:
    anything = hostile_values(list(VALID_FIELDS))
    if name in TEXT_FIELDS:
        anything = mostly(VALID_FIELDS[name].flatmap(tainted), anything)
    return st.tuples(st.just(name), anything)


def hostile_bodies(schema: type[Schema]) -> st.SearchStrategy[bytes]:
    """A valid body with one field tainted or replaced, so the others let it through to the
    code behind validation; or any JSON at all."""
    fields = schema().fields
    required = {name for name in fields if fields[name].required}
    valid = st.fixed_dictionaries(
        {name: VALID_FIELDS[name] for name in required},
        optional={name: VALID_FIELDS[name] for name in set(fields) - required},
    )
    one_bad = st.builds(
        lambda body, bad: {**body, bad[0]: bad[1]},
        valid,
        st.sampled_from(sorted(fields)).flatmap(hostile_field),
    )
    anything = hostile_values(list(VALID_FIELDS))
    escaped = mostly(st.just(True), st.just(False))
    return st.builds(encoded, mostly(one_bad, anything), ensure_ascii=escaped)


@pytest.mark.parametrize("label", BODIES)
def test_no_body_makes_the_api_fail_or_write(
    label: str, client: FlaskClient, services: Services, auth: dict[str, str], customer_id: int
) -> None:
    """What schemathesis does not send: lone surrogates, NUL, deep nesting, endless numbers."""
    method, path = label.split(" ")

    @given(body=hostile_bodies(BODIES[label]))
    @fuzz_settings(ci_examples=100)
    def never_a_server_error(body: bytes) -> None:
        before = fingerprint(services.db)
        response = client.open(
            path.format(id=customer_id), method=method, data=body, content_type=JSON, headers=auth
        )
        assert_harmless(services.db, before, response.status_code, response.text)

    never_a_server_error()


DIGITS = "9" * 5000
# name: (method, path with {id} for the customer, JSON body, status, what the message names)
REGRESSIONS: dict[str, tuple[str, str, str | bytes | None, int, str]] = {
    "body of 100,000 [": ("POST", "/api/customers", "[" * 100_000, 400, "nested"),
    "5,000-digit points": (
        "POST",
        "/api/customers/{id}/transactions",
        f'{{"points": {DIGITS}, "reason": "order"}}',
        400,
        "digits",
    ),
    "5,000-digit float points": (
        "POST",
        "/api/customers/{id}/transactions",
        '{"points": 1e99999, "reason": "order"}',
        422,
        "points",
    ),
    "lone surrogate in an e-mail": (
        "POST",
        "/api/customers",
        '{"email": "jana\\ud83d@example.com"}',
        422,
        "email",
    ),
    "lone surrogate in a name": (
        "PATCH",
        "/api/customers/{id}",
        '{"first_name": "Jana \\udc00"}',
        422,
        "first_name",
    ),
    "lone surrogate in a reference": (
        "POST",
        "/api/customers/{id}/transactions",
        '{"points": 5, "reason": "order", "reference": "\\ud83d"}',
        422,
        "reference",
    ),
    "NUL in a name": (
        "PATCH",
        "/api/customers/{id}",
        '{"last_name": "a\\u0000b"}',
        422,
        "last_name",
    ),
    "NUL in the e-mail query": ("GET", "/api/customers?email=a%00@example.com", None, 422, "email"),
    "UTF-16 body": (
        "POST",
        "/api/customers",
        '{"email": "jana@example.com"}'.encode("utf-16"),
        400,
        "utf-8",
    ),
    "huge customer id": ("GET", "/api/customers/100000000000000000000", None, 404, ""),
    "huge customer id, POST": (
        "POST",
        "/api/customers/100000000000000000000/transactions",
        '{"points": 5, "reason": "order"}',
        404,
        "",
    ),
    "huge after": ("GET", "/api/customers?after=100000000000000000000", None, 422, "after"),
    "huge ledger limit": ("GET", "/api/customers/{id}/ledger?limit=" + DIGITS, None, 422, "limit"),
}


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "named"), REGRESSIONS.values(), ids=REGRESSIONS.keys()
)
def test_hostile_requests_are_refused_saying_why(
    client: FlaskClient,
    services: Services,
    auth: dict[str, str],
    customer_id: int,
    method: str,
    path: str,
    body: str | bytes | None,
    status: int,
    named: str,
) -> None:
    before = fingerprint(services.db)
    response: TestResponse = client.open(
        path.format(id=customer_id),
        method=method,
        data=body,
        content_type=JSON if body is not None else None,
        headers=auth,
    )
    assert response.status_code == status, response.text
    assert named in response.json["message"]
    assert fingerprint(services.db) == before


def test_json_nested_near_pythons_recursion_limit_is_a_400(
    client: FlaskClient, services: Services, auth: dict[str, str]
) -> None:
    """Depths the first parse survives but a parse deeper in the stack would not."""
    before = fingerprint(services.db)
    limit = sys.getrecursionlimit()
    for depth in range(limit - 200, limit + 10):
        body = '{"email": ' + "[" * depth + "]" * depth + "}"
        response = client.post("/api/customers", data=body, content_type=JSON, headers=auth)
        assert response.status_code == 400, (depth, response.text)
        assert "nested more than" in response.json["message"]
    assert fingerprint(services.db) == before
