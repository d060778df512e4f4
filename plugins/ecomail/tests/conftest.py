"""Fixtures: a fake Ecomail account on a real loopback server, and integrations aimed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pointbridge_ecomail import PLATFORM
from pointbridge_ecomail.fake import SERVER_OPTIONS, FakeEcomail, create_app

from pointbridge import Contact, Event, EventType, Integration
from pointbridge.testing import FakeServer
from pointbridge.testing.contacts import sample_contact
from pointbridge.testing.contract import INTEGRATION_ID, sample_integration
from pointbridge.testing.pacing import RecordingPacer, record_pacing

API_KEY = "eco-test-key-8f2a"


@pytest.fixture(autouse=True)
def pacer(monkeypatch: pytest.MonkeyPatch) -> RecordingPacer:
    return record_pacing(monkeypatch).pacer_for(INTEGRATION_ID, PLATFORM.rate_limit)


@pytest.fixture
def account() -> FakeEcomail:
    fake = FakeEcomail(api_key=API_KEY)
    fake.add_list("Newsletter", 1)
    fake.add_list("VIP", 2)
    return fake


@pytest.fixture
def server(account: FakeEcomail) -> Iterator[FakeServer]:
    with FakeServer(create_app(account), **SERVER_OPTIONS) as running:
        yield running


@pytest.fixture
def make_integration(server: FakeServer) -> Callable[..., Integration]:
    def make(*, url: str | None = None, prefix: str = "ellity_", **settings: Any) -> Integration:
        merged = {"api_key": API_KEY, "list_id": "1", "api_url": url or server.url, **settings}
        return sample_integration(PLATFORM, merged, field_prefix=prefix)

    return make


@pytest.fixture
def integration(make_integration: Callable[..., Integration]) -> Integration:
    return make_integration()


def contact(customer_id: int = 1, email: str | None = None, **overrides: Any) -> Contact:
    return sample_contact(customer_id, email, **overrides)


_customer_ids: dict[str, int] = {}


def event(event_id: int, type_: EventType, email: str = "c1@example.cz", **data: Any) -> Event:
    return Event(
        id=event_id,
        type=type_,
        # One customer per address, as in the host: the plugin keeps each customer's order.
        customer_id=_customer_ids.setdefault(email, len(_customer_ids) + 1),
        email=email,
        occurred_at=datetime(2026, 5, 1, 10, 30, tzinfo=UTC),
        data=data,
    )


@pytest.fixture
def make_contact() -> Callable[..., Contact]:
    return contact


@pytest.fixture
def make_event() -> Callable[..., Event]:
    return event
