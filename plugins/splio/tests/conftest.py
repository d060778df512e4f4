"""Shared fixtures: a fake Splio universe on a loopback port, integrations pointing at it."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pointbridge_splio import PLATFORM, install
from pointbridge_splio.fake import FakeSplio, serve

from pointbridge import Integration
from pointbridge.testing import FakeServer
from pointbridge.testing.contract import sample_integration
from pointbridge.testing.pacing import RecordingPacers, record_pacing

GOOD_KEY = "splio-key-0123456789abcdef"
# Each test's integrations get ids of their own, so no test meets another's kept client.
_ids = itertools.count(1000)


@pytest.fixture(autouse=True)
def pacing(monkeypatch: pytest.MonkeyPatch) -> RecordingPacers:
    """Both of Splio's budgets record their waits instead of sleeping them."""
    return record_pacing(monkeypatch)


@pytest.fixture
def fake() -> FakeSplio:
    return FakeSplio(api_keys={GOOD_KEY})


@pytest.fixture
def server(fake: FakeSplio) -> Iterator[FakeServer]:
    with serve(fake) as running:
        yield running


MakeIntegration = Callable[..., Integration]


@pytest.fixture
def make_integration(server: FakeServer) -> MakeIntegration:
    def make(
        api_key: str = GOOD_KEY,
        data: dict[str, Any] | None = None,
        prefix: str = "ellity_",
        integration_id: int | None = None,
    ) -> Integration:
        return sample_integration(
            PLATFORM,
            {"api_key": api_key, "api_url": server.url},
            id=integration_id if integration_id is not None else next(_ids),
            data=data or {},
            field_prefix=prefix,
        )

    return make


@pytest.fixture
def installed(make_integration: MakeIntegration) -> Integration:
    """An integration after a successful install, carrying the field ids it stored."""
    # The host hands install's data back on later calls to the same integration.
    first = make_integration()
    return make_integration(data=dict(install(first).data), integration_id=first.id)
