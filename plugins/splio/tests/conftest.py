"""Shared fixtures: a fake Splio universe on a loopback port, integrations pointing at it."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pointbridge_splio.client import reset_clients
from pointbridge_splio.fake import FakeSplio, rate_limit_rules, serve
from pointbridge_splio.pacing import reset_windows

from pointbridge import Contact, Integration
from pointbridge.testing import FakeServer, Faults

GOOD_KEY = "splio-key-0123456789abcdef"
_ids = itertools.count(1)


@pytest.fixture(autouse=True)
def _fresh_clients() -> Iterator[None]:
    # Tokens and request windows are kept per process; each test starts without them.
    reset_clients()
    reset_windows()
    yield
    reset_clients()


@pytest.fixture(scope="session")
def _shared() -> Iterator[tuple[FakeSplio, FakeServer]]:
    # One server for the session: stopping one costs half a second.
    state = FakeSplio(api_keys={GOOD_KEY})
    with serve(state) as running:
        yield state, running


@pytest.fixture
def fake(_shared: tuple[FakeSplio, FakeServer]) -> FakeSplio:
    state, _ = _shared
    state.reset(api_keys={GOOD_KEY})
    return state


@pytest.fixture
def server(fake: FakeSplio, _shared: tuple[FakeSplio, FakeServer]) -> FakeServer:
    _, running = _shared
    running.faults = Faults()
    running.rate_limits = rate_limit_rules()  # the fake's windows start empty, as ours do
    with running._lock:
        running.requests.clear()
    return running


MakeIntegration = Callable[..., Integration]


@pytest.fixture
def make_integration(server: FakeServer) -> MakeIntegration:
    def make(
        api_key: str = GOOD_KEY,
        data: dict[str, Any] | None = None,
        prefix: str = "ellity_",
        url: str | None = None,
        integration_id: int | None = None,
    ) -> Integration:
        return Integration(
            id=integration_id if integration_id is not None else next(_ids),
            name="splio-test",
            platform="splio",
            settings={"api_key": api_key, "api_url": url or server.url},
            data=data or {},
            field_prefix=prefix,
            expiry_notice_days=None,
            webhook_secret="unused",
            webhook_url="http://localhost/unused",
        )

    return make


@pytest.fixture
def installed(make_integration: MakeIntegration) -> Integration:
    """An integration after a successful install, carrying the field ids it stored."""
    from pointbridge_splio import install

    # The host hands install's data back on later calls to the same integration.
    first = make_integration()
    result = install(first)
    return make_integration(data=dict(result.data), integration_id=first.id)


def contact(
    customer_id: int,
    email: str,
    *,
    points: int = 0,
    tier: str | None = None,
    missions: int = 0,
    rewards: int = 0,
    referrals: int = 0,
    first_name: str | None = None,
) -> Contact:
    return Contact(
        customer_id=customer_id,
        email=email,
        external_id=None,
        first_name=first_name,
        last_name=None,
        points=points,
        pin=None,
        registered=True,
        next_expiration_date=None,
        next_expiration_points=0,
        last_change_at=None,
        last_change_points=None,
        referral_code=None,
        referral_link=None,
        tier_id=tier.lower() if tier else None,
        tier_name=tier,
        missions=missions,
        rewards=rewards,
        referrals=referrals,
    )


@pytest.fixture
def make_contact() -> Callable[..., Contact]:
    return contact
