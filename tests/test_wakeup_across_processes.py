"""On PostgreSQL a committed outbox row wakes the workers of every process (LISTEN / NOTIFY):
a standalone ``pointbridge worker`` sends a change at once, not at its next poll."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pointbridge.delivery.wakeup import listen
from pointbridge.services import Services

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


@pytest.fixture
def listening(services: Services) -> Iterator[threading.Event]:
    """A worker's listener on a connection of its own, as in another process; set once it
    listens (what was committed before is due already), then cleared."""
    woken, stop = threading.Event(), threading.Event()
    listener = threading.Thread(target=listen, args=(services.db, woken, stop), daemon=True)
    listener.start()
    assert woken.wait(timeout=30), "the listener never started"
    woken.clear()
    yield woken
    stop.set()
    listener.join(timeout=30)


@pytest.fixture
def customer_id(services: Services, tmp_path: Path) -> int:
    with services.db.transaction() as session:
        services.integrations.add(session, "dry", "jsonl", {"path": str(tmp_path / "o.jsonl")})
        return services.loyalty.create_customer(session, {"email": "jana@example.com"}).id


@pytest.mark.parametrize("points", [50, -20])
def test_a_committed_points_change_wakes_a_listening_worker(
    services: Services, customer_id: int, listening: threading.Event, points: int
) -> None:
    with services.db.transaction() as session:
        services.loyalty.post_transaction(session, customer_id, 100, "order")
    assert listening.wait(timeout=30)
    listening.clear()
    with services.db.transaction() as session:
        services.loyalty.post_transaction(session, customer_id, points, "order")
    assert listening.wait(timeout=30)


def test_a_bulk_of_contact_updates_wakes_a_listening_worker(
    services: Services, customer_id: int, listening: threading.Event
) -> None:
    with services.db.transaction() as session:
        services.outbox.contacts_changed(session, [customer_id])
    assert listening.wait(timeout=30)
