"""SQLite's writers of one process take turns in Python before they ask SQLite.

SQLite has one writer at a time, and a connection that finds the write lock taken sleeps in
SQLite's busy handler (1, 2, 5 ... up to 100 ms between tries) however soon the lock is free:
the API's threads, waiting for each other that way, spent a third of their time asleep.
Within a process they queue on a lock instead, and the busy handler is left to the few other
processes. A writer still waits ``busy_timeout`` at most in all: its wait for a turn counts
against it, so while another process holds the database (a long import batch) every waiting
request answers its 503 after one ``busy_timeout``, not one after another.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.exc import OperationalError

BUSY_TIMEOUT_SECONDS = 30.0
# A turn that came this fast leaves SQLite the whole busy_timeout: no PRAGMA to shorten it.
PROMPT_TURN_SECONDS = 0.01


def busy_timeout_pragma(seconds: float | None = None) -> str:
    """The PRAGMA that sets a connection's wait for the write lock (``BUSY_TIMEOUT_SECONDS``
    unless told)."""
    seconds = BUSY_TIMEOUT_SECONDS if seconds is None else seconds
    return f"PRAGMA busy_timeout={max(int(seconds * 1000), 0)}"


class WriteTurns:
    def __init__(self) -> None:
        # Reentrant: a write transaction opened inside another by the same thread fails in
        # SQLite, not here.
        self._lock = threading.RLock()
        self._waited = threading.local()

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold this process's write turn; SQLite's "database is locked" when it did not come
        within ``busy_timeout``, as SQLite's own wait would have ended."""
        started = time.monotonic()
        if not self._lock.acquire(timeout=BUSY_TIMEOUT_SECONDS):
            raise OperationalError(
                "BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked")
            )
        self._waited.seconds = time.monotonic() - started
        try:
            yield
        finally:
            self._waited.seconds = 0.0
            self._lock.release()

    def begin_immediate(self, connection: Any) -> None:
        """``BEGIN IMMEDIATE`` on ``connection`` (SQLAlchemy's), SQLite's wait for the write
        lock shortened by what this writer waited for its turn."""
        waited = getattr(self._waited, "seconds", 0.0)
        if waited < PROMPT_TURN_SECONDS:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            return
        driver = connection.connection.dbapi_connection
        driver.execute(busy_timeout_pragma(BUSY_TIMEOUT_SECONDS - waited))
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        finally:
            driver.execute(busy_timeout_pragma())
