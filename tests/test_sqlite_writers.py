"""Writers of one process on SQLite queue for each other in Python, not in SQLite's busy
handler, which sleeps up to 100 ms between tries however soon the lock is free."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import event, text

from pointbridge.storage.db import Database


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
