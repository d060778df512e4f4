"""Writers of one process on SQLite queue for each other in Python, not in SQLite's busy
handler, which sleeps up to 100 ms between tries however soon the lock is free."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from pointbridge.access.tokens import create_token
from pointbridge.services import Services
from pointbridge.storage import write_turns
from pointbridge.storage.db import Database
from pointbridge.web import create_app
from tests.conftest import make_settings


def test_a_second_writer_waits_for_the_first_without_asking_sqlite(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'writers.sqlite3'}")
    with db.transaction() as session:
        session.execute(text("CREATE TABLE note (body TEXT)"))
    begun: list[str] = []

    @event.listens_for(db.engine, "before_cursor_execute")
    def _record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("BEGIN"):
            begun.append(threading.current_thread().name)

    holding, release = threading.Event(), threading.Event()

    def first() -> None:
        with db.transaction() as session:
            session.execute(text("INSERT INTO note VALUES ('first')"))
            holding.set()
            release.wait(30)

    def second() -> None:
        with db.transaction() as session:
            session.execute(text("INSERT INTO note VALUES ('second')"))

    threads = [threading.Thread(target=first, name="first")]
    threads[0].start()
    assert holding.wait(30)
    threads.append(threading.Thread(target=second, name="second"))
    threads[1].start()
    threads[1].join(0.2)  # long enough to have reached SQLite, had it not queued
    assert threads[1].is_alive() and begun == ["first"]

    release.set()
    for thread in threads:
        thread.join(30)
    assert begun == ["first", "second"]
    with db.read() as session:
        assert session.scalars(text("SELECT body FROM note")).all() == ["first", "second"]
    db.dispose()


def test_writers_behind_another_process_answer_503_after_one_busy_timeout(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While another process holds the database (an import batch, a cron'd expiry run),
    each waiting request answers its 503 after busy_timeout (README, Running in production),
    its wait for a turn included: not the n-th of a server's threads after n of them."""
    monkeypatch.setattr(write_turns, "BUSY_TIMEOUT_SECONDS", 1.0)  # 30 s in production
    services = Services.build(make_settings(tmp_path, sqlite_url))
    with services.db.transaction() as session:
        headers = {"Authorization": f"Bearer {create_token(session, 'shop')}"}
    app = create_app(services=services)
    other_process = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    other_process.execute("BEGIN IMMEDIATE")
    answers: list[tuple[int, float]] = []

    def create(number: int) -> None:
        started = time.monotonic()
        response = app.test_client().post(
            "/api/customers", json={"email": f"c{number}@example.com"}, headers=headers
        )
        answers.append((response.status_code, time.monotonic() - started))

    threads = [threading.Thread(target=create, args=(number,)) for number in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    other_process.execute("ROLLBACK")
    other_process.close()
    services.db.dispose()

    assert [status for status, _ in answers] == [503] * 4
    # Four in turn take four busy_timeouts at least (the fourth answers after 4 s); together,
    # one and what a request costs, which a busy core may stretch: the bound sits between.
    assert max(waited for _, waited in answers) < 3.5, sorted(answers)
