from __future__ import annotations

import json
from typing import Any

import pointbridge_ecomail as plugin
import pytest
from pointbridge_ecomail import PLATFORM
from pointbridge_ecomail.fake import FakeEcomail, create_app, error_body, throttled

from pointbridge import AuthError, EventType, PermanentError, RateLimited, TransientError
from pointbridge.kit.ratelimit import SAFETY
from pointbridge.testing import FakeServer


@pytest.fixture
def known(account: FakeEcomail) -> FakeEcomail:
    for email in ("c1@example.cz", "c2@example.cz", "c3@example.cz", "c4@example.cz"):
        account.add_subscriber("1", email)
    return account


def test_each_event_type_reaches_the_tracker_with_its_label_and_details(
    known: FakeEcomail, integration, make_event
):
    events = [
        make_event(11, EventType.CREDIT_CHANGED, points=20, balance=140, reason="order"),
        make_event(12, EventType.CREDIT_EXPIRES, points=40, expires_on="2026-12-31"),
        make_event(13, EventType.PIN_CHANGED, pin="9876"),
    ]
    assert plugin.emit_event(integration, events) == []
    stored = known.events_for("c1@example.cz")
    assert [(e["category"], e["action"], e["label"]) for e in stored] == [
        ("ellity", "change", "credit"),
        ("ellity", "change", "expiry"),
        ("ellity", "change", "pin"),
    ]
    assert json.loads(stored[0]["value"]) == {
        "points": 20,
        "balance": 140,
        "reason": "order",
        "event_id": "11-20260501103000000000",
    }
    assert json.loads(stored[1]["value"]) == {
        "points": 40,
        "expires_on": "2026-12-31",
        "event_id": "12-20260501103000000000",
    }
    assert json.loads(stored[2]["value"]) == {"pin": "9876", "event_id": "13-20260501103000000000"}


def test_legacy_prefix_becomes_the_category(known: FakeEcomail, make_integration, make_event):
    integration = make_integration(prefix="mehub_")
    plugin.emit_event(integration, [make_event(1, EventType.PIN_CHANGED, pin="1")])
    assert known.events[0]["category"] == "mehub"


def test_event_for_a_contact_ecomail_does_not_know_yet_is_retried_not_lost(
    known: FakeEcomail, integration, make_event
):
    events = [
        make_event(21, EventType.PIN_CHANGED, email="stranger@example.cz", pin="1"),
        make_event(22, EventType.PIN_CHANGED, email="c2@example.cz", pin="2"),
    ]
    failures = plugin.emit_event(integration, events)
    assert [f.key for f in failures] == [21]
    assert isinstance(failures[0].error, TransientError)
    assert "not an Ecomail subscriber yet" in str(failures[0].error)
    assert [e["email"] for e in known.events] == ["c2@example.cz"]


def test_once_the_contact_is_pushed_the_retried_event_goes_through(
    known: FakeEcomail, integration, make_event, make_contact
):
    pending = make_event(31, EventType.PIN_CHANGED, email="new@example.cz", pin="5")
    assert [f.key for f in plugin.emit_event(integration, [pending])] == [31]
    plugin.push_contact(integration, [make_contact(8, email="new@example.cz")])
    assert plugin.emit_event(integration, [pending]) == []
    assert len(known.events_for("new@example.cz")) == 1


class _Answers:
    """The fake Ecomail, but the tracker requests numbered in ``planned`` answer that status:
    a fault at a set place in a batch, met the same on a slow machine as on a fast one."""

    def __init__(self, app: Any, planned: dict[int, int]) -> None:
        self.app = app
        self.planned = planned
        self.seen = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ["PATH_INFO"] == "/tracker/events":
            self.seen += 1
            status = self.planned.get(self.seen)
            if status == 429:
                _, headers, body = throttled(60)
                start_response("429 Too Many Requests", list(headers.items()))
                return [body]
            if status:
                start_response(f"{status} Error", [("Content-Type", "application/json")])
                return [error_body(status)]
        return self.app(environ, start_response)


def test_throttled_mid_batch_keeps_what_went_through_and_the_rest_waits_without_an_attempt(
    known: FakeEcomail, make_integration, make_event
):
    events = [
        make_event(40 + i, EventType.PIN_CHANGED, email=f"c{i}@example.cz", pin=str(i))
        for i in range(1, 5)
    ]
    with FakeServer(_Answers(create_app(known), {3: 429})) as limited:
        failures = plugin.emit_event(make_integration(url=limited.url), events)
        sent = limited.requests_to("POST", "/tracker/events")
    assert [e["email"] for e in known.events] == ["c1@example.cz", "c2@example.cz"]
    assert [f.key for f in failures] == [43, 44]
    assert all(isinstance(f.error, RateLimited) and f.error.retry_after == 60 for f in failures)
    # It stopped at the first 429 instead of hammering on.
    assert [r.status for r in sent] == [200, 200, 429]


def test_throttled_before_anything_went_through_every_event_waits_ecomails_wait(
    known: FakeEcomail, server: FakeServer, integration, make_event
):
    server.fail_next(1, "429", retry_after=60)
    events = [make_event(n, EventType.PIN_CHANGED, pin=str(n)) for n in (1, 2)]
    failures = plugin.emit_event(integration, events)
    assert [f.key for f in failures] == [1, 2]
    assert all(isinstance(f.error, RateLimited) and f.error.retry_after == 60 for f in failures)
    assert len(server.requests) == 1
    assert known.events == []


def test_oversized_value_fails_that_event_only(known: FakeEcomail, integration, make_event):
    events = [
        make_event(51, EventType.CREDIT_CHANGED, points=1, balance=1, reason="x" * 21000),
        make_event(52, EventType.PIN_CHANGED, pin="2"),
    ]
    failures = plugin.emit_event(integration, events)
    assert [f.key for f in failures] == [51]
    assert isinstance(failures[0].error, PermanentError)
    assert len(known.events) == 1


def test_bad_key_raises_auth_error(known: FakeEcomail, make_integration, make_event):
    with pytest.raises(AuthError, match="For developers"):
        plugin.emit_event(
            make_integration(api_key="nope"), [make_event(1, EventType.PIN_CHANGED, pin="1")]
        )


def test_every_event_request_waits_for_the_integrations_shared_budget(
    known: FakeEcomail, integration, make_event, pacer
):
    events = [make_event(60 + i, EventType.PIN_CHANGED, pin=str(i)) for i in range(3)]
    assert pacer.limit == PLATFORM.rate_limit
    with pacer.call():  # the host's slot for the call, which the first request reuses
        assert plugin.emit_event(integration, events) == []
    # The clock stands still: the two later events wait one and two full slots.
    interval = 60 / (1000 * SAFETY)
    assert pacer.waits == pytest.approx([interval, 2 * interval])
    assert len(known.events) == 3


def test_a_contact_push_and_the_events_after_it_share_one_budget(
    known: FakeEcomail, integration, make_event, make_contact, pacer
):
    with pacer.call():
        agreed = make_contact(1, email="c1@example.cz", marketing_consent=True)
        plugin.push_contact(integration, [agreed])
    with pacer.call():
        plugin.emit_event(integration, [make_event(70, EventType.PIN_CHANGED, pin="1")])
    # Two hook calls, one request each: the second waits for the slot after the first.
    assert pacer.waits == pytest.approx([60 / (1000 * SAFETY)])


def test_one_failed_request_costs_only_its_event_and_that_customers_later_ones(
    known: FakeEcomail, make_integration, make_event
):
    events = [
        make_event(81, EventType.PIN_CHANGED, email="c1@example.cz", pin="1"),
        make_event(82, EventType.PIN_CHANGED, email="c2@example.cz", pin="2"),  # 503
        make_event(83, EventType.PIN_CHANGED, email="c2@example.cz", pin="3"),  # held back
        make_event(84, EventType.PIN_CHANGED, email="c3@example.cz", pin="4"),
    ]
    with FakeServer(_Answers(create_app(known), {2: 503})) as flaky:
        failures = plugin.emit_event(make_integration(url=flaky.url), events)
        sent = len(flaky.requests_to("POST", "/tracker/events"))
    assert [f.key for f in failures] == [82, 83]
    assert all(isinstance(f.error, TransientError) for f in failures)
    # c2's second PIN was not sent ahead of its first: it is retried after it, in order.
    assert sent == 3
    assert [e["email"] for e in known.events] == ["c1@example.cz", "c3@example.cz"]


def test_two_failures_in_a_row_stop_the_batch(known: FakeEcomail, make_integration, make_event):
    events = [
        make_event(90 + n, EventType.PIN_CHANGED, email=f"c{n}@example.cz", pin=str(n))
        for n in range(1, 5)
    ]
    with FakeServer(_Answers(create_app(known), {2: 503, 3: 503})) as down:
        failures = plugin.emit_event(make_integration(url=down.url), events)
        sent = len(down.requests_to("POST", "/tracker/events"))
    assert [f.key for f in failures] == [92, 93, 94]
    assert "stopped answering" in str(failures[-1].error)
    # Never tried: it waits with the integration instead of spending an attempt.
    assert isinstance(failures[-1].error, RateLimited)
    assert sent == 3  # the fourth event was not tried against a platform that looks down
    assert [e["email"] for e in known.events] == ["c1@example.cz"]
