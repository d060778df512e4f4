"""Shared fixtures: a fake SmartEmailing on a real port, and builders for integrations,
contacts and events pointed at it."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from typing import Any

import pytest
from pointbridge_smartemailing import client as client_module
from pointbridge_smartemailing.fake import FakeSmartEmailing, create_app, error_body

from core import Contact, Event, EventType, Integration, RateLimit
from core.ratelimit import Pacer
from core.testing import FakeServer

WEBHOOK_SECRET = "whsec-0123456789abcdef"


_accounts = itertools.count(1)


class RecordingPacer(Pacer):
    """The integration's pacer with the real interval, recording its waits instead of sleeping.

    Unit tests call hooks directly, outside the host's one-slot-per-call, so every request
    would otherwise really wait 1/5 s; this keeps them fast and lets a test read the pacing.
    """

    def __init__(self, limit: RateLimit | None) -> None:
        self.waits: list[float] = []
        self.clock = 1000.0
        super().__init__(limit, clock=lambda: self.clock, sleep=self.waits.append)


@pytest.fixture(autouse=True)
def pacer(monkeypatch: pytest.MonkeyPatch) -> RecordingPacer:
    made: dict[int, RecordingPacer] = {}

    def pacer_for(integration_id: int, limit: RateLimit | None) -> RecordingPacer:
        return made.setdefault(integration_id, RecordingPacer(limit))

    monkeypatch.setattr(client_module, "pacer_for", pacer_for)
    # Every test's integration has id 1; the one the conftest builds is the one tests read.
    return pacer_for(1, client_module.RATE_LIMIT)


@pytest.fixture
def fake() -> FakeSmartEmailing:
    # A login of its own per test: the plugin caches field ids per account in the process.
    return FakeSmartEmailing(
        username=f"shop{next(_accounts)}@example.cz",
        contactlists={1: "Newsletter", 7: "Loyalty members"},
    )


class _Dispatch:
    """WSGI app that forwards to whichever fake the current test installed."""

    def __init__(self) -> None:
        self.app: Callable[..., Iterable[bytes]] | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        assert self.app is not None
        return self.app(environ, start_response)


@pytest.fixture(scope="session")
def _shared_server() -> Iterator[tuple[FakeServer, _Dispatch]]:
    # Stopping a server costs half a second (werkzeug's poll interval); one for the whole
    # session keeps the suite fast. Tests needing faults or rate limits start their own.
    dispatch = _Dispatch()
    with FakeServer(dispatch, error_body=error_body) as running:
        yield running, dispatch


@pytest.fixture
def server(
    _shared_server: tuple[FakeServer, _Dispatch], fake: FakeSmartEmailing
) -> Iterator[FakeServer]:
    running, dispatch = _shared_server
    dispatch.app = create_app(fake)
    running.requests.clear()
    yield running
    dispatch.app = None


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
        values: dict[str, Any] = {
            "customer_id": customer_id,
            "email": email,
            "external_id": None,
            "first_name": "Jan",
            "last_name": "Novák",
            "points": 120,
            "pin": "4821",
            "registered": False,
            "next_expiration_date": date(2026, 12, 31),
            "next_expiration_points": 50,
            "last_change_at": datetime(2026, 5, 4, 13, 30, 5),
            "last_change_points": 20,
            "referral_code": "JAN120",
            "referral_link": "https://shop.example/r/JAN120",
            "tier_id": None,
            "tier_name": None,
            "missions": 0,
            "rewards": 0,
            "referrals": 0,
        }
        values.update(overrides)
        return Contact(**values)

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
