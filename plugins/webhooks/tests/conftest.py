"""The subscribing system, on a real loopback port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pointbridge_webhooks.receiver import Receiver, create_app

from pointbridge.testing import FakeServer


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
def endpoint(receiver: Receiver) -> Iterator[FakeServer]:
    with FakeServer(create_app(receiver)) as server:
        yield server
