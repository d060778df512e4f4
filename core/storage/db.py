"""Engine and session set-up for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from pointbridge.contract.errors import PointbridgeError
from pointbridge.storage.write_turns import WriteTurns, busy_timeout_pragma

READ_ONLY = "pointbridge_read_only"
# A read whose statements need not share one snapshot (most often: it has one statement).
UNSNAPPED = "pointbridge_unsnapped"
# SQLite's default: the write-ahead log is copied into the database file at 1,000 pages.
_WAL_AUTOCHECKPOINT = 1_000
# SQLite's default page cache: 2,000 KiB (negative: a size in KiB, not in pages).
_CACHE_SIZE = -2_000


class NoDatabase(PointbridgeError):
    pass


def _sqlite_file(url: URL) -> Path | None:
    """The file an SQLite URL names; None for in-memory and ``file:`` URI databases."""
    path = url.database
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return Path(path)


def _create_private_file(path: Path) -> None:
    """Create the database file, and its folder, readable by its owner only. SQLite would create
    it under the process umask, usually world-readable; its -wal and -shm files copy the
    database file's mode. An existing file keeps its mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _configure_sqlite(engine: Engine, turns: WriteTurns) -> None:
    # pysqlite's own transaction handling defers BEGIN and then fails with "database is locked"
    # when a reader upgrades to a writer; BEGIN IMMEDIATE makes writers queue on busy_timeout
    # instead (the SQLAlchemy documentation's recipe for serializable SQLite). Transactions
    # that only read take a plain BEGIN: under WAL they neither wait for nor block the writer.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(busy_timeout_pragma())
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        options = connection.get_execution_options()
        if options.get(READ_ONLY):
            # Without BEGIN each statement is its own read transaction: a webhook's one
            # lookup then costs no BEGIN and COMMIT on the request path.
            if not options.get(UNSNAPPED):
                connection.exec_driver_sql("BEGIN")
        else:
            turns.begin_immediate(connection)


class Database:
    """One engine and its session factory. An SQLite file is created by the first write, not
    by building, so commands that only read (or not even that) leave no file behind."""

    def __init__(self, url: str, **engine_options: Any) -> None:
        self.url = url
        self.engine = create_engine(url, **engine_options)
        self._file: Path | None = None
        # One process's writers take turns before they ask SQLite (write_turns says why).
        self._write_turn: Callable[[], AbstractContextManager[Any]] = nullcontext
        if self.engine.dialect.name == "sqlite":
            self._file = _sqlite_file(self.engine.url)
            turns = WriteTurns()
            self._write_turn = turns.turn
            _configure_sqlite(self.engine, turns)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        read_options: dict[str, Any] = {READ_ONLY: True}
        if self.engine.dialect.name == "postgresql":
            # Under READ COMMITTED each statement reads its own snapshot anyway; without a
            # transaction around them a read saves its BEGIN and COMMIT round trips.
            read_options["isolation_level"] = "AUTOCOMMIT"
        self._read_sessions = sessionmaker(
            self.engine.execution_options(**read_options), expire_on_commit=False
        )
        self._unsnapped_read_sessions = sessionmaker(
            self.engine.execution_options(**read_options, **{UNSNAPPED: True}),
            expire_on_commit=False,
        )

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def _missing_file(self) -> Path | None:
        """The SQLite file still to be created, if any. Once it exists it is not looked for
        again: this runs before every transaction, on the request and delivery paths."""
        if self._file is not None and self._file.exists():
            self._file = None
        return self._file

    def create_file(self) -> None:
        """Create a missing SQLite file, owner-only (nothing to do on PostgreSQL)."""
        if missing := self._missing_file():
            _create_private_file(missing)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits together, or rolls back together on any error."""
        self.create_file()
        with self._write_turn(), self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def read(self, *, snapshot: bool = True) -> Iterator[Session]:
        """A session that only reads. On SQLite it is one transaction, a consistent snapshot
        that takes no lock (``snapshot=False``: each statement reads on its own, for a read of
        one statement); on PostgreSQL each statement sees the latest committed data, as
        statements in a READ COMMITTED transaction would."""
        # Connecting would create an empty file, and the read would fail on a missing table.
        if missing := self._missing_file():
            raise NoDatabase(
                f"There is no database at {missing} yet: create it with `pointbridge db upgrade`."
            )
        sessions = self._read_sessions if snapshot else self._unsnapped_read_sessions
        with sessions() as session, session.begin():
            yield session

    @contextmanager
    def bulk_load(self, pages: int = 10_000, cache_pages: int = 8_192) -> Iterator[None]:
        """SQLite settings for a bulk load on the connections this process checks out, put
        back at check-in so the pool's other users keep the defaults. Nothing on PostgreSQL.

        The write-ahead log grows to ``pages`` (4 KiB each) before a commit copies it into the
        database file, instead of SQLite's 1,000, and is copied once at the end: each batch
        rewrites index pages all over the file (e-mails, referral codes), and copying them
        after every few batches was a third of its commits' CPU. The page cache holds
        ``cache_pages`` (32 MiB) instead of SQLite's 2 MB: a batch of a million-row table
        dirties thousands of index pages, which a 2 MB cache spilled into the log mid-batch and
        read back from the operating system, page by page (half the load's system time).
        Durability at commit is unchanged."""
        if self.engine.dialect.name != "sqlite":
            yield
            return

        def checkout(dbapi_connection: Any, *_: Any) -> None:
            dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={pages}")
            dbapi_connection.execute(f"PRAGMA cache_size={cache_pages}")

        def checkin(dbapi_connection: Any, *_: Any) -> None:
            if dbapi_connection is not None:
                dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={_WAL_AUTOCHECKPOINT}")
                dbapi_connection.execute(f"PRAGMA cache_size={_CACHE_SIZE}")

        event.listen(self.engine, "checkout", checkout)
        event.listen(self.engine, "checkin", checkin)
        try:
            yield
        finally:
            event.remove(self.engine, "checkout", checkout)
            event.remove(self.engine, "checkin", checkin)
            if self._missing_file() is None:
                raw = self.engine.raw_connection()
                try:
                    # PASSIVE: copies what no reader still needs, and waits for nobody.
                    raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
                finally:
                    raw.close()

    def dispose(self) -> None:
        self.engine.dispose()
