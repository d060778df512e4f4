"""Shared fixtures: a fake SmartEmailing on a real port, and builders for integrations,
contacts and events pointed at it."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from pointbridge_smartemailing.fake import SERVER_OPTIONS, FakeSmartEmailing, create_app

from pointbridge import Contact, Event, EventType, Integration, Platform
from pointbridge.plugins import PluginHost
from pointbridge.testing import FakeServer
from pointbridge.testing.contacts import sample_contact
from pointbridge.testing.contract import sample_integration
from pointbridge.testing.pacing import RecordingPacer, record_pacing

WEBHOOK_SECRET = "whsec-0123456789abcdef"


_accounts = itertools.count(1)


@pytest.fixture(scope="session")
def platform() -> Platform:
    return PluginHost().platform("smartemailing")


@pytest.fixture(autouse=True)
def pacer(monkeypatch: pytest.MonkeyPatch, platform: Platform) -> RecordingPacer:
    # Every test's integration has id 1; the one the conftest builds is the one tests read.
    return record_pacing(monkeypatch).pacer_for(1, platform.rate_limit)


@pytest.fixture
def fake() -> FakeSmartEmailing:
    # A login of its own per test: the plugin caches field ids per account in the process.
    return FakeSmartEmailing(
        username=f"shop{next(_accounts)}@example.cz",
        contactlists={1: "Newsletter", 7: "Loyalty members"},
    )


@pytest.fixture
def server(fake: FakeSmartEmailing) -> Iterator[FakeServer]:
    with FakeServer(create_app(fake), **SERVER_OPTIONS) as running:
        yield running


@pytest.fixture
def make_integration(
    server: FakeServer, fake: FakeSmartEmailing, platform: Platform
) -> Callable[..., Integration]:
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
            **settings,
        }
        return sample_integration(
            platform,
            values,
            id=1,
            name="shop",
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
