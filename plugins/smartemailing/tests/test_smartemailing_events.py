from __future__ import annotations

from collections.abc import Callable

from pointbridge_smartemailing import emit_event
from pointbridge_smartemailing.fake import FakeSmartEmailing

from pointbridge import Event, EventType, Integration
from pointbridge.testing import FakeServer


def test_event_names_and_payloads(
    make_integration: Callable[..., Integration],
    make_event: Callable[..., Event],
    fake: FakeSmartEmailing,
    server: FakeServer,
) -> None:
    events = [
        make_event(1, EventType.CREDIT_CHANGED, points=-30, balance=90, reason="expiration"),
        make_event(2, EventType.CREDIT_EXPIRES),
        make_event(3, EventType.PIN_CHANGED, pin="0042"),
    ]
    assert emit_event(make_integration(), events) == []
    assert fake.events == [
        {
            "emailaddress": "jan@example.cz",
            "name": "ellity-credit-changed",
            "payload": {
                "points": -30,
                "balance": 90,
                "reason": "expiration",
                "event_id": "1-20260504000000000000",
            },
        },
        {
            "emailaddress": "jan@example.cz",
            "name": "ellity-credit-expires",
            "payload": {
                "points": 50,
                "expiration_date": "2026-12-31",
                "event_id": "2-20260504000000000000",
            },
        },
        {
            "emailaddress": "jan@example.cz",
            "name": "ellity-pin-changed",
            "payload": {"pin": "0042", "event_id": "3-20260504000000000000"},
        },
    ]
    # One trigger-event call carrying the array, not one per event.
    assert len(server.requests_to("POST", "/trigger-event")) == 1
    # SmartEmailing creates the contact an event names: no event waits for a contact.
    assert "jan@example.cz" in fake.contacts


def test_legacy_prefix_names(
    make_integration: Callable[..., Integration],
    make_event: Callable[..., Event],
    fake: FakeSmartEmailing,
) -> None:
    emit_event(make_integration(prefix="mehub_"), [make_event(1, EventType.PIN_CHANGED)])
    assert fake.events[0]["name"] == "mehub-pin-changed"
