"""The transactions hot path keeps the schemas' rule: it reads only bodies ``TransactionIn``
takes, to the same values, answers as ``TransactionOut`` dumps, and leaves every refusal to
the schema's own words."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st
from marshmallow import ValidationError

from pointbridge.loyalty.ledger_sql import Entry
from pointbridge.loyalty.rules import MAX_POINTS
from pointbridge.testing.fuzz import fuzz_settings
from pointbridge.web.api.lean import transaction_body, transaction_out
from pointbridge.web.api.schemas import TransactionIn, TransactionOut

TOMORROW = date.today() + timedelta(days=1)
_points = st.one_of(
    st.integers(-MAX_POINTS - 2, MAX_POINTS + 2),
    st.sampled_from([0, 1, -1, MAX_POINTS, -MAX_POINTS, MAX_POINTS + 1, True, False]),
    st.floats(allow_nan=False),
    st.text(max_size=4),
    st.none(),
)
_text = st.one_of(
    st.text(alphabet="az09_-A \x00\ud800é\n", max_size=70),
    st.text(max_size=210),
    st.from_regex(r"[a-z0-9][a-z0-9_-]{0,70}", fullmatch=True),
    st.integers(),
    st.none(),
)
_dates = st.one_of(
    st.dates().map(date.isoformat),
    st.sampled_from(
        [
            TOMORROW.isoformat(),
            date.today().isoformat(),
            "2999-02-30",
            "\uff12999-01-01",
            "29990102",
        ]
    ),
    st.text(max_size=12),
    st.integers(),
)
_bodies = st.one_of(
    st.fixed_dictionaries(
        {"points": _points, "reason": _text},
        optional={"reference": _text, "expires_at": _dates, "other": st.integers()},
    ),
    st.lists(st.integers(), max_size=2),
    st.text(max_size=5),
    st.none(),
)


def _schema_load(body: Any) -> dict[str, Any] | None:
    try:
        return TransactionIn().load(body)
    except ValidationError:
        return None


@given(body=_bodies)
@fuzz_settings(ci_examples=300)
def test_the_hot_path_reads_a_body_only_as_the_schema_would(body: Any) -> None:
    lean = transaction_body(body)
    if lean is not None:
        assert lean == _schema_load(body)


def test_the_hot_path_reads_the_bodies_shops_send() -> None:
    for body in (
        {"points": 120, "reason": "order", "reference": "order-1001"},
        {"points": -30, "reason": "reward"},
        {"points": 5, "reason": "review", "expires_at": TOMORROW.isoformat()},
    ):
        assert transaction_body(body) == _schema_load(body) is not None


def test_the_hot_path_answers_as_the_schema_dumps() -> None:
    now = datetime(2025, 3, 10, 12, 0, 1, 5, tzinfo=UTC)
    for entry in (
        Entry(7, 1, 120, "order", "order-1", date(2026, 3, 10), now, 150),
        Entry(8, 1, -3, "order", None, None, now.replace(tzinfo=None), 147),
    ):
        for created in (True, False):
            dumped = TransactionOut().dump({**asdict(entry), "replayed": not created})
            assert transaction_out(entry, created) == dumped


def test_a_body_the_hot_path_leaves_gets_the_schemas_answer(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    customer = client.post("/api/customers", json={"email": "jana@example.com"}, headers=auth)
    path = f"/api/customers/{customer.json['id']}/transactions"

    zero = client.post(path, json={"points": 0, "reason": "order"}, headers=auth)
    extra = client.post(path, json={"points": 5, "reason": "order", "x": 1}, headers=auth)
    loose_date = {"points": 5, "reason": "order", "expires_at": "29990102"}
    taken = client.post(path, json=loose_date, headers=auth)

    assert zero.status_code == 422
    assert zero.json["message"] == "The request has invalid fields: points"
    assert zero.json["errors"] == {"points": ["Must not be 0."]}
    assert extra.status_code == 422 and extra.json["errors"] == {"x": ["Unknown field."]}
    # ISO 8601's basic format: the hot path leaves it to the schema, which takes it.
    assert taken.status_code == 201 and taken.json["expires_on"] == "2999-01-02"
