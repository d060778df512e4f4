"""Leases: which worker may send for an integration right now (a compare-and-set on a row).

One holder at a time keeps the platform's rate budget whole however many workers run; a
holder that stops renewing (it crashed) loses the lease when it lapses.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, update

from pointbridge.storage.db import Database


def acquire(db: Database, model: Any, row_id: int, owner: str, ttl: timedelta) -> bool:
    """Take or renew the lease on ``model`` row ``row_id``; False if someone else holds it."""
    now = datetime.now(UTC)
    with db.transaction() as session:
        result = session.execute(
            update(model)
            .where(
                model.id == row_id,
                or_(
                    model.lease_owner.is_(None),
                    model.lease_owner == owner,
                    model.lease_until < now,
                ),
            )
            .values(lease_owner=owner, lease_until=now + ttl)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1


def release(db: Database, model: Any, row_id: int, owner: str) -> None:
    with db.transaction() as session:
        session.execute(
            update(model)
            .where(model.id == row_id, model.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )


@contextmanager
def kept(
    db: Database, model: Any, row_id: int, owner: str, ttl: timedelta
) -> Iterator[threading.Event]:
    """Renew the lease in the background while work runs under it (a plugin may take
    minutes for one batch); if the process dies the renewals stop and the lease lapses.

    Yields an event that is set, and renewing stops, once a renewal fails: the lease lapsed
    and another holder took it over, so the work should stop.
    """
    done = threading.Event()
    lost = threading.Event()

    def renew() -> None:
        while not done.wait(ttl.total_seconds() / 3):
            if not acquire(db, model, row_id, owner, ttl):
                lost.set()
                return

    heartbeat = threading.Thread(target=renew, name="lease-heartbeat", daemon=True)
    heartbeat.start()
    try:
        yield lost
    finally:
        done.set()
        heartbeat.join()
