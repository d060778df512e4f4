"""Fixtures for the Dotdigital plugin tests: a fake account on a real port, integrations."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import Any

import pointbridge_dotmailer
import pytest
from pointbridge_dotmailer import client, connection
from pointbridge_dotmailer.fake import DotdigitalState, create_app
from pointbridge_dotmailer.settings import DotdigitalSettings

from pointbridge import Contact, Integration
from pointbridge.ratelimit import Pacer
from pointbridge.testing import FakeServer
from pointbridge.testing.contacts import sample_contact

BOOK_ID = 7


@pytest.fixture(autouse=True)
def _fresh_connections(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Short polls keep the suite fast; the fake still answers NotFinished first.
    monkeypatch.setattr(client, "POLL_DELAYS", (0.01, 0.02))
    monkeypatch.setattr(client, "POLL_BUDGET_SECONDS", 5.0)
    connection.reset()
    yield
    connection.reset()


@pytest.fixture(scope="session")
def _dd_session_server() -> Iterator[FakeServer]:
    # One server for the session: stopping a FakeServer takes half a second.
    with FakeServer(create_app()) as server:
        yield server


@pytest.fixture
def dd_state() -> DotdigitalState:
    return DotdigitalState(address_books={BOOK_ID: "Customers", 8: "Newsletter"})


@pytest.fixture
def dd_server(dd_state: DotdigitalState, _dd_session_server: FakeServer) -> FakeServer:
    """The session's fake, serving this test's fresh account, with an empty request log."""
    server = _dd_session_server
    server.app.config["STATE"] = dd_state  # type: ignore[attr-defined]
    with server._lock:
        server.requests.clear()
    return server


@pytest.fixture
def pacer_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """What the integration's shared pacer made requests wait, recorded instead of slept.

    Unit tests call the hooks directly, without the host taking a slot per call, so at 35
    calls a minute every write would sleep 1.8 s. The pacer is the real one otherwise.
    """
    waits: list[float] = []
    pacers: dict[int, Pacer] = {}

    def pacer(integration: Integration) -> Pacer:
        if integration.id not in pacers:
            pacers[integration.id] = Pacer(
                pointbridge_dotmailer.PLATFORM.rate_limit, sleep=waits.append
            )
        return pacers[integration.id]

    monkeypatch.setattr(pointbridge_dotmailer, "_pacer", pacer)
    return waits


MakeIntegration = Callable[..., Integration]


@pytest.fixture
def make_integration(
    dd_state: DotdigitalState, dd_server: FakeServer, pacer_waits: list[float]
) -> MakeIntegration:
    def make(
        *,
        url: str | None = None,
        password: str | None = None,
        address_book_id: str = str(BOOK_ID),
        prefix: str = "ellity_",
        data: dict[str, Any] | None = None,
    ) -> Integration:
        settings = DotdigitalSettings().load(
            {
                "username": dd_state.username,
                "password": dd_state.password if password is None else password,
                "address_book_id": address_book_id,
                "api_url": url or dd_server.url,
            }
        )
        return Integration(
            id=1,
            name="dd",
            platform="dotmailer",
            settings=settings,
            data=data or {},
            field_prefix=prefix,
            expiry_notice_days=None,
            webhook_secret="unused",
            webhook_url="http://localhost/webhooks/1/x",
        )

    return make


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
            **overrides,
        }
        if email is None:
            email = f"customer{customer_id}@example.com"
        return sample_contact(customer_id, email, **fields)

    return make
