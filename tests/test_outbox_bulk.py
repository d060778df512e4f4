"""``Outbox.contacts_changed`` writes its rows in bulk: the same rows as one at a time, and the
same wake-up once the transaction commits (none when it rolls back)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pointbridge.services import Services
from pointbridge.storage.models import OutboxMessage


def _customers(services: Services, count: int) -> list[int]:
    with services.db.transaction() as session:
        return [
            services.loyalty.create_customer(session, {"email": f"c{n}@example.com"}).id
            for n in range(count)
        ]


def _rows(services: Services) -> list[dict[str, Any]]:
    with services.db.read() as session:
        return [
            {c.key: getattr(m, c.key) for c in OutboxMessage.__table__.c}
            for m in session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        ]


@pytest.fixture
def two_integrations(services: Services, tmp_path: Path) -> list[int]:
    with services.db.transaction() as session:
        return [
            services.integrations.add(session, name, "jsonl", {"path": str(tmp_path / name)}).id
            for name in ("one", "two")
        ]


def test_bulk_contact_rows_are_the_rows_one_at_a_time_writes(
    services: Services, two_integrations: list[int]
) -> None:
    ids = _customers(services, 3)  # create_customer queues each one's row by contact_changed
    one_at_a_time = _rows(services)
    services.outbox.wakeup.clear()

    with services.db.transaction() as session:
        services.outbox.contacts_changed(session, ids)
        assert not services.outbox.wakeup.is_set(), "woken before the rows are committed"
    assert services.outbox.wakeup.is_set()

    bulk = _rows(services)[len(one_at_a_time) :]
    assert [(r["integration_id"], r["customer_id"]) for r in bulk] == [
        (i, c) for i in two_integrations for c in ids
    ]

    def without_ids_and_times(row: dict[str, Any]) -> dict[str, Any]:
        return {
            c: v
            for c, v in row.items()
            if c not in ("id", "customer_id", "next_attempt_at", "created_at")
        }

    assert sorted(map(str, map(without_ids_and_times, bulk))) == sorted(
        map(str, map(without_ids_and_times, one_at_a_time))
    )
    for row in bulk:  # due at once, as the model's defaults make a row
        assert row["next_attempt_at"] == row["created_at"] is not None


def test_bulk_rows_for_chosen_integrations_and_no_wake_when_rolled_back(
    services: Services, two_integrations: list[int]
) -> None:
    ids = _customers(services, 2)
    before = len(_rows(services))
    services.outbox.wakeup.clear()

    with pytest.raises(RuntimeError), services.db.transaction() as session:
        services.outbox.contacts_changed(session, ids)
        raise RuntimeError("the caller's transaction fails")
    assert not services.outbox.wakeup.is_set()
    assert len(_rows(services)) == before

    with services.db.transaction() as session:
        services.outbox.contacts_changed(session, ids, [two_integrations[1]])
        services.outbox.contacts_changed(session, [])
    assert [(r["integration_id"], r["customer_id"]) for r in _rows(services)[before:]] == [
        (two_integrations[1], c) for c in ids
    ]
    assert services.outbox.wakeup.is_set()
