"""Fixtures for the Dotdigital plugin tests: a fake account on a real port, integrations."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import Any

import pytest
from pointbridge_dotmailer import PLATFORM, client, install
from pointbridge_dotmailer.fake import DotdigitalState, create_app, throttled

from pointbridge import Contact, Integration
from pointbridge.testing import FakeServer
from pointbridge.testing.contacts import sample_contact
from pointbridge.testing.contract import sample_integration
from pointbridge.testing.pacing import RecordingPacers, record_pacing

BOOK_ID = 7


@pytest.fixture(autouse=True)
def _short_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    # Short polls keep the suite fast; the fake still answers NotFinished first.
    monkeypatch.setattr(client, "POLL_DELAYS", (0.01, 0.02))
    monkeypatch.setattr(client, "POLL_BUDGET_SECONDS", 5.0)


@pytest.fixture
def dd_state() -> DotdigitalState:
    return DotdigitalState(address_books={BOOK_ID: "Customers", 8: "Newsletter"})


@pytest.fixture
def dd_server(dd_state: DotdigitalState) -> Iterator[FakeServer]:
    with FakeServer(create_app(dd_state), throttled=throttled) as server:
        yield server


@pytest.fixture
def pacers(monkeypatch: pytest.MonkeyPatch) -> RecordingPacers:
    """The integration's pacer, recording its waits instead of sleeping: unit tests call the
    hooks directly, without the host's slot per call, so at 35 calls a minute every write
    would sleep 1.8 s."""
    return record_pacing(monkeypatch)


MakeIntegration = Callable[..., Integration]


@pytest.fixture
def make_integration(
    dd_state: DotdigitalState, dd_server: FakeServer, pacers: RecordingPacers
) -> MakeIntegration:
    def make(
        *,
        url: str | None = None,
        password: str | None = None,
        address_book_id: str = str(BOOK_ID),
        prefix: str = "ellity_",
        data: dict[str, Any] | None = None,
        field_preset: str = "",
    ) -> Integration:
        settings = {
            "username": dd_state.username,
            "password": dd_state.password if password is None else password,
            "address_book_id": address_book_id,
            "api_url": url or dd_server.url,
            "field_preset": field_preset,
        }
        return sample_integration(PLATFORM, settings, field_prefix=prefix, data=data or {})

    return make


@pytest.fixture
def installed(make_integration: MakeIntegration) -> Integration:
    """An integration after a successful install, carrying install's data."""
    return make_integration(data=dict(install(make_integration()).data))


@pytest.fixture
def make_contact() -> Callable[..., Contact]:
    def make(customer_id: int = 1, email: str | None = None, **overrides: Any) -> Contact:
        fields = {
            "first_name": "Jana",
            "last_name": "Nováková",
            "pin": None,
            "registered": True,
            "next_expiration_date": date(2030, 1, 31),
            "next_expiration_points": 20,
            "last_change_at": datetime(2026, 5, 1, 12, 0),
            "referral_code": "JANA1",
            "referral_link": "https://shop.example.com/r/JANA1",
            "tier_id": "gold",
            "tier_name": "Gold",
            "rewards": 1,
            "referrals": 2,
            "lifetime_points": 500,
            "tier_expires_at": date(2027, 1, 31),
            "points_to_next_tier": 380,
            **overrides,
        }
        if email is None:
            email = f"customer{customer_id}@example.com"
        return sample_contact(customer_id, email, **fields)

    return make
