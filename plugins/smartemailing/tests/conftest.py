"""Shared fixtures: a fake SmartEmailing on a real port, and builders for integrations,
contacts and events pointed at it."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from pointbridge_smartemailing import client as client_module
from pointbridge_smartemailing.fake import FakeSmartEmailing, create_app, error_body

from pointbridge import Contact, Event, EventType, Integration
from pointbridge.testing import FakeServer
from pointbridge.testing.contacts import sample_contact
from pointbridge.testing.pacing import RecordingPacer, RecordingPacers

WEBHOOK_SECRET = "whsec-0123456789abcdef"


_accounts = itertools.count(1)


@pytest.fixture(autouse=True)
def pacer(monkeypatch: pytest.MonkeyPatch) -> RecordingPacer:
    pacers = RecordingPacers()
    monkeypatch.setattr(client_module, "pacer_for", pacers.pacer_for)
    # Every test's integration has id 1; the one the conftest builds is the one tests read.
    return pacers.pacer_for(1, client_module.RATE_LIMIT)


@pytest.fixture
def fake() -> FakeSmartEmailing:
    # A login of its own per test: the plugin caches field ids per account in the process.
    return FakeSmartEmailing(
        username=f"shop{next(_accounts)}@example.cz",
        contactlists={1: "Newsletter", 7: "Loyalty members"},
    )


@pytest.fixture
def server(fake: FakeSmartEmailing) -> Iterator[FakeServer]:
    with FakeServer(create_app(fake), error_body=error_body) as running:
        yield running


@pytest.fixture
def make_integration(server: FakeServer, fake: FakeSmartEmailing) -> Callable[..., Integration]:
    def make(
        *,
        data: Mapping[str, Any] | None = None,
        prefix: str = "ellity_",
        url: str | None = None,
        **settings: Any,
    ) -> Integration:
        values = {
            "username": fake.username,
            "api_key": fake.api_key,
            "api_url": url or server.url,
            "contact_list_id": None,
            **settings,
        }
        return Integration(
            id=1,
            name="shop",
            platform="smartemailing",
            settings=values,
            data=dict(data or {}),
            field_prefix=prefix,
            expiry_notice_days=7,
            webhook_secret=WEBHOOK_SECRET,
            webhook_url="https://shop.example/webhooks/1/token",
        )

    return make


@pytest.fixture
def make_contact() -> Callable[..., Contact]:
    def make(customer_id: int = 1, email: str = "jan@example.cz", **overrides: Any) -> Contact:
        fields = {
            "pin": "4821",
            "next_expiration_points": 50,
            "last_change_at": datetime(2026, 5, 4, 13, 30, 5),
            **overrides,
        }
        return sample_contact(customer_id, email, **fields)

    return make


@pytest.fixture
def make_event() -> Callable[..., Event]:
    def make(
        event_id: int = 1,
        type_: EventType = EventType.CREDIT_CHANGED,
        email: str = "jan@example.cz",
        **data: Any,
    ) -> Event:
        defaults: dict[EventType, dict[str, Any]] = {
            EventType.CREDIT_CHANGED: {"points": 20, "balance": 120, "reason": "order"},
            EventType.CREDIT_EXPIRES: {"points": 50, "expires_on": "2026-12-31"},
            EventType.PIN_CHANGED: {"pin": "4821"},
        }
        return Event(
            id=event_id,
            type=type_,
            customer_id=event_id,
            email=email,
            occurred_at=datetime(2026, 5, 4, tzinfo=UTC),
            data={**defaults[type_], **data},
        )

    return make
