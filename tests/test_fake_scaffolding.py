"""The shared pieces of a fake platform answer the way a plugin's fake relies on."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, Response
from flask.testing import FlaskClient

from pointbridge.testing import fakes

errors = fakes.JsonErrors(lambda status, message: {"code": status, "message": message})


def _client(check: Any) -> FlaskClient:
    app = Flask("scaffolding")
    errors.answer_http_errors(app)
    fakes.require_auth(app, check, lambda: errors.response(401, "nope"), open_paths=("/token",))

    @app.post("/echo")
    def echo() -> Response:
        return fakes.json_response(fakes.json_body(errors.reject(400)))

    @app.get("/items")
    def items() -> Response:
        page, offset, limit = fakes.offset_page(list(range(10)), errors.reject(400), max_limit=5)
        return fakes.json_response({"page": page, "offset": offset, "limit": limit})

    @app.get("/pages")
    def pages() -> Response:
        page, number, size = fakes.numbered_page(list(range(10)), errors.reject(400))
        return fakes.json_response({"page": page, "number": number, "size": size})

    @app.get("/token")
    def token() -> Response:
        return fakes.json_response("open")

    return app.test_client()


def test_credentials_are_checked_before_any_route_except_the_open_ones() -> None:
    client = _client(lambda: fakes.header_is("key", "k1"))
    refused = client.get("/nowhere", headers={"key": "k2"})
    assert (refused.status_code, refused.json) == (401, {"code": 401, "message": "nope"})
    assert client.get("/token").json == "open"
    missing = client.get("/nowhere", headers={"key": "k1"})
    assert missing.status_code == 404 and missing.json["message"] == "Not Found"


def test_basic_and_bearer_credentials() -> None:
    basic = _client(lambda: fakes.basic_auth_is("user", "pw"))
    assert basic.get("/items?limit=5", auth=("user", "pw")).status_code == 200
    assert basic.get("/items?limit=5", auth=("user", "wrong")).status_code == 401
    bearer = _client(lambda: fakes.bearer_token() == "t0k")
    assert bearer.get("/items?limit=5", headers={"Authorization": "Bearer t0k"}).status_code == 200
    assert bearer.get("/items?limit=5", headers={"Authorization": "t0k"}).status_code == 401


def test_a_body_that_is_not_a_json_object_is_the_platforms_400() -> None:
    client = _client(lambda: True)
    assert client.post("/echo", json={"a": 1}).json == {"a": 1}
    broken = client.post("/echo", data=b'{"a": 1', content_type="application/json")
    assert broken.status_code == 400 and "not valid JSON" in broken.json["message"]
    assert client.post("/echo", json=[1]).status_code == 400


def test_paging_by_offset_and_by_page_number() -> None:
    client = _client(lambda: True)
    assert client.get("/items?offset=8&limit=5").json == {"page": [8, 9], "offset": 8, "limit": 5}
    assert client.get("/items?limit=6").status_code == 400
    assert client.get("/items?offset=x").status_code == 400
    assert client.get("/pages?page=2&per_page=4").json == {
        "page": [4, 5, 6, 7],
        "number": 2,
        "size": 4,
    }
    assert client.get("/pages?page=0").status_code == 400


def test_a_field_store_checks_values_by_type_and_names_unknown_fields() -> None:
    store = fakes.FieldStore({"int": lambda value: isinstance(value, int)})
    points = store.add("Points", "int")
    store.add("Note", "text")
    assert store == {
        1: {"id": 1, "name": "Points", "type": "int"},
        2: {"id": 2, "name": "Note", "type": "text"},
    }
    assert store.check(1, 5) is points and store.check(2, object())["name"] == "Note"
    assert store.named("points") is points
    with pytest.raises(fakes.FieldError, match="Points: 'five' is not a valid int"):
        store.check(1, "five")
    with pytest.raises(fakes.UnknownField, match="9"):
        store.check(9, 1)
    del store[2]
    assert store.by_name({1: 5, 2: "gone"}) == {"Points": 5}


def test_a_field_store_keyed_by_name() -> None:
    store = fakes.FieldStore({}, key_of=str.upper, type_key="data_type")
    store.add("points", "Numeric", visibility="Public")
    assert store == {"POINTS": {"name": "POINTS", "data_type": "Numeric", "visibility": "Public"}}
    assert store.check("Points", 1)["name"] == "POINTS"


def test_the_platforms_429_and_5xx_bodies() -> None:
    status, headers, body = fakes.too_many_requests({"message": "slow"}, {"Retry-After": "2"})
    assert (status, headers, body) == (429, {"Retry-After": "2"}, b'{"message": "slow"}')
    assert [fakes.whole_seconds(w) for w in (0.1, 1.0, 1.2)] == [1, 1, 2]
    assert errors.body(503, "down") == b'{"code": 503, "message": "down"}'


def test_nullable_values_and_loose_emails() -> None:
    number = fakes.nullable(int, float)
    assert number(None) and number(3) and number(2.5)
    assert not number(True) and not number("3")
    assert fakes.nullable(bool)(False)
    assert fakes.is_email("jana@example.com")
    assert not fakes.is_email("jana@example") and not fakes.is_email(None)


def test_jobs_answer_pending_to_planned_polls_then_run_once() -> None:
    ran: list[str] = []

    def run(job: fakes.Job) -> tuple[str, dict[str, Any]]:
        ran.append(job.payload)
        return "done", {"rows": len(job.payload)}

    jobs = fakes.Jobs(run, finish_after_polls=2)
    job = jobs.start("abc")
    assert job.id == fakes.job_id(1) == "00000000-0000-0000-0000-000000000001"
    assert jobs.running() == 1
    assert [jobs.poll(job.id).status for _ in range(4)] == ["pending", "pending", "done", "done"]
    assert ran == ["abc"] and job.result == {"rows": 3}
    assert jobs.running() == 0 and jobs.poll("unknown") is None


def test_jobs_can_end_with_a_planned_outcome_unrun() -> None:
    jobs = fakes.Jobs(lambda job: pytest.fail("not run"), finish_after_polls=0)
    jobs.outcome = "Failed"
    job = jobs.start({})
    assert jobs.poll(job.id).status == "Failed" and job.result is None
