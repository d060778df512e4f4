"""Waking workers in other processes on PostgreSQL: LISTEN / NOTIFY.

An insert into the outbox sends ``NOTIFY pointbridge_outbox`` by a trigger (migration
0014), which PostgreSQL delivers when (and only if) its transaction commits. Each worker
process listens on a connection of its own and wakes its worker at once, so a standalone
``pointbridge worker`` sends as soon as an API or CLI process commits a change, not at its
next poll. SQLite has no such channel: there the embedded worker is woken in-process
(``Outbox.wake``) and a standalone one polls.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from pointbridge.storage.db import Database

CHANNEL = "pointbridge_outbox"
# How often the listener looks at ``stop`` while no notification arrives.
STOP_CHECK_SECONDS = 1.0
RECONNECT_SECONDS = 5.0

log = logging.getLogger(__name__)


def listen(db: Database, wakeup: threading.Event, stop: threading.Event) -> None:
    """Set ``wakeup`` whenever a transaction that wrote outbox rows commits, until ``stop``
    is set; reconnects after a lost connection (the worker polls meanwhile)."""
    while not stop.is_set():
        try:
            _listen_once(db, wakeup, stop)
        except Exception:
            log.warning(
                "lost the database connection that wakes the worker; retrying in %.0f s",
                RECONNECT_SECONDS,
                exc_info=True,
            )
            stop.wait(RECONNECT_SECONDS)


def _listen_once(db: Database, wakeup: threading.Event, stop: threading.Event) -> None:
    raw = db.engine.raw_connection()
    try:
        connection: Any = raw.driver_connection  # psycopg.Connection
        connection.autocommit = True
        connection.execute(f"LISTEN {CHANNEL}")
        # Whatever was committed before LISTEN took effect is due already.
        wakeup.set()
        while not stop.is_set():
            for _ in connection.notifies(timeout=STOP_CHECK_SECONDS):
                wakeup.set()
    finally:
        raw.invalidate()  # not back into the pool: it is LISTENing
