"""Customer import from CSV: check the whole file, then load it in batches.

The check reads the file once, streamed, and judges every row by the schema the REST API uses
(``import_rows``), so a file either goes in as a whole or is refused with every bad cell named;
its verdicts are kept for the load. The load writes them a batch at a time, one transaction
each (``import_writer``), and notes the last batch committed, so a stopped import resumes
after it.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import pickle
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pointbridge.loyalty.import_rows import ImportRefused, Row, RowError
from pointbridge.loyalty.import_split import read_rows_split
from pointbridge.loyalty.import_writer import (
    BatchRefused,
    CustomerWriter,
    ImportResult,
    external_id_clashes,
)
from pointbridge.storage.db import Database

BATCH_SIZE = 5_000


@dataclass
class CheckResult:
    rows: int = 0
    bad_rows: int = 0
    fingerprint: str = ""


@contextlib.contextmanager
def few_collections() -> Iterator[None]:
    """Python's cyclic garbage collector run rarely, for a process that imports a file (the
    command line's: the setting is the whole process's).

    An import allocates a few dicts a row, none of them in a cycle, and every 700 allocations
    start a collection; every so often a full one walks every object the process holds
    (SQLAlchemy's, marshmallow's, the plugins'): a quarter of a 100,000-row import's CPU time.
    What is there before the import lives as long as the process, so it is frozen out of the
    collections, and a collection waits for 10,000 allocations."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(10_000, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


# phase 1: the check ------------------------------------------------------------------------


class CheckedRows:
    """The check's verdict on every row, kept in a temporary file for the load: the CSV is
    read and judged once (judging was half an import's time). Written and read by this
    process only, and gone when closed."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by __exit__

    def __enter__(self) -> CheckedRows:
        return self

    def __exit__(self, *_: object) -> None:
        self._file.close()

    def add(self, batch: list[Row]) -> None:
        # Tuples: pickling a slotted dataclass costs a dataclasses.fields() call per row.
        rows = [(row.line, row.values, row.errors) for row in batch]
        pickle.dump(rows, self._file, protocol=pickle.HIGHEST_PROTOCOL)

    def __iter__(self) -> Iterator[Row]:
        self._file.seek(0)
        while True:
            try:
                rows = pickle.load(self._file)
            except EOFError:
                return
            yield from (Row(*row) for row in rows)


def check_file(
    source: IO[bytes],
    on_error: Callable[[RowError], None],
    db: Database | None = None,
    *,
    on_rows: Callable[[int], None] | None = None,
    keep: CheckedRows | None = None,
) -> CheckResult:
    """Read the whole file and call ``on_error`` for each problem, in line order; nothing is
    written. With ``db``, an external id that belongs to another customer there is a problem
    too. ``on_rows`` hears the rows read so far, a batch at a time; ``keep`` gets every row,
    for the load."""
    result = CheckResult()
    digest = hashlib.sha256()
    for batch in _batches(read_rows_split(source, digest), BATCH_SIZE):
        if keep is not None:
            keep.add(batch)
        clashes = _clashes_by_line(db, batch) if db is not None else {}
        for row in batch:
            errors = row.errors or ((clashes[row.line],) if row.line in clashes else ())
            result.bad_rows += bool(errors)
            for error in errors:
                on_error(error)
        result.rows += len(batch)
        if on_rows:
            on_rows(result.rows)
    result.fingerprint = digest.hexdigest()
    return result


def _clashes_by_line(db: Database, rows: list[Row]) -> dict[int, RowError]:
    with db.read() as session:
        clashes = external_id_clashes(session.connection(), rows)
    return {error.line: error for error in clashes.values()}


# phase 2: the load -------------------------------------------------------------------------


def _batches(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class ResumePoint:
    """The last line of the last committed batch, kept in the instance folder per file content.

    It is written after each commit: a crash between the two repeats one batch, which changes
    nothing the second time (the upsert and the ``import`` reference are idempotent).
    """

    def __init__(self, instance_path: Path, fingerprint: str) -> None:
        self.path = instance_path / "imports" / f"{fingerprint}.json"

    def read(self) -> int:
        try:
            return int(json.loads(self.path.read_text())["line"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def save(self, line: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"line": line}))

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


class CustomerLoader(CustomerWriter):
    """Loads a checked file in batches, one ``write`` each, resumable after the last one."""

    def load(
        self,
        every: Iterable[Row],
        fingerprint: str,
        *,
        resume: bool = False,
        batch_size: int = BATCH_SIZE,
        on_batch: Callable[[ImportResult, int], None] | None = None,
    ) -> ImportResult:
        """Import the valid rows of a file (``read_rows`` of it, or the ``CheckedRows`` its
        ``check_file`` kept; the check gave ``fingerprint``); invalid rows count as skipped.
        ``resume`` starts after the last batch a previous run of the same file committed.
        ``on_batch`` hears the totals and the rows read after each batch."""
        point = ResumePoint(self.loyalty.settings.instance_path, fingerprint)
        result = ImportResult(resumed_after_line=point.read() if resume else 0)
        rows = (row for row in every if row.line > result.resumed_after_line)
        with self.db.bulk_load():
            read = 0
            for batch in _batches(rows, batch_size):
                valid = [row for row in batch if row.values is not None]
                result.skipped += len(batch) - len(valid)
                if valid:
                    try:
                        self.write(valid, result)
                    except BatchRefused as exc:
                        first = batch[0].line
                        raise ImportRefused(
                            f"Lines {first}-{batch[-1].line}: {exc.message}. The batches before "
                            f"line {first} are imported; {exc.then} with --resume."
                        ) from None
                point.save(batch[-1].line)
                result.batches += 1
                read += len(batch)
                if on_batch:
                    on_batch(result, read)
        point.clear()
        return result
