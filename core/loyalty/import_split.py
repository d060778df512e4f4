"""The rows of a large CSV file read and judged on two cores: a forked process reads and
judges the end of the file while this one does the beginning, and hands its rows back as it
goes.

Reading and judging a row is most of the check's time, and the check runs before anything is
written, on one core of a box that has two. The file is read one line a record (no customer
field holds a line break), so it can be cut after any line. The forked process's rows come
back in their order, a batch at a time, through a temporary file (a pipe says when a batch is
there, so neither process waits for the other's pace); a customer named on both sides is
found by the one ``once`` that sees every row. The verdicts, their messages and the file's
digest are a single pass's.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pickle
import signal
import tempfile
from collections.abc import Iterator
from typing import IO, Any

from pointbridge.loyalty.import_rows import (
    CsvLines,
    Row,
    judged_rows,
    once,
    read_header,
    read_rows,
)

# Below this a file is read by one process: a fork and its pickled rows cost more than they
# save (a 100,000-row file is about 6 MB).
SPLIT_BYTES = 4 * 2**20
# The share of the file the forked process judges: this one also hands every row of both
# parts on (repeated customers, errors, the kept rows), which costs about half of judging.
FORKED_SHARE = 0.65
# Rows the forked process hands back at a time.
_HANDED_TOGETHER = 2_000
_CHUNK = 2**20


def read_rows_split(source: IO[bytes], digest: Any) -> Iterator[Row]:
    """What ``read_rows(source, digest)`` gives, the end of a large file judged by a forked
    process meanwhile. ``source`` must be at its start."""
    cut = _cut(source)
    if cut is None:
        yield from read_rows(source, digest)
        return
    offset, lines_before = cut
    # The header is read (and refused) before the fork, so the fork has it.
    header, lines = read_header(itertools.islice(source, lines_before), digest)
    with _Fork(source.name, offset, lines_before + 1, header) as fork:
        yield from once(itertools.chain(judged_rows(header, lines), fork.rows(source, digest)))


def _cut(source: IO[bytes]) -> tuple[int, int] | None:
    """Where to cut the file (the byte offset just after a line break) and how many lines
    come before; None for a file read by one process (small, one core, not a file)."""
    name = getattr(source, "name", None)
    if not isinstance(name, str) or not hasattr(os, "fork") or (os.cpu_count() or 1) < 2:
        return None
    fd = source.fileno()
    size = os.fstat(fd).st_size
    if size < SPLIT_BYTES:
        return None
    offset = int(size * (1 - FORKED_SHARE))
    while True:
        chunk = os.pread(fd, _CHUNK, offset)
        if not chunk:
            return None  # the cut is in the last line
        end = chunk.find(b"\n")
        if end >= 0:
            offset += end + 1
            break
        offset += len(chunk)
    if offset >= size:
        return None
    lines_before = sum(
        os.pread(fd, min(_CHUNK, offset - at), at).count(b"\n") for at in range(0, offset, _CHUNK)
    )
    return offset, lines_before


class _Fork:
    """The forked process that judges the file from ``offset`` (its line ``first_line``)."""

    def __init__(self, path: str, offset: int, first_line: int, header: list[str]) -> None:
        self.offset, self.first_line, self.header = offset, first_line, header
        self.status: int | None = None
        # The batches go into a file that only the two processes have open (its name is gone
        # at once), each with an offset of its own; a byte on the pipe says one is complete.
        fd, name = tempfile.mkstemp(prefix="pointbridge-import-")
        self._batches = open(name, "rb")  # noqa: SIM115 - closed by __exit__
        os.unlink(name)
        ready, told = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # pragma: no cover - the forked process, which never returns
            os.close(ready)
            _judge_into(path, offset, first_line, header, fd, told)
        os.close(fd)
        os.close(told)
        self._ready = ready

    def __enter__(self) -> _Fork:
        return self

    def __exit__(self, *_: object) -> None:
        if self.status is None:  # the rows are no longer wanted: a refused file, an error
            os.kill(self.pid, signal.SIGTERM)
            self._wait()
        self._batches.close()
        os.close(self._ready)

    def rows(self, source: IO[bytes], digest: Any) -> Iterator[Row]:
        """The forked process's rows, as it hands them back (the rest judged here if it
        fails). ``source`` is at ``offset``: the beginning of the file is read."""
        for chunk in iter(lambda: source.read(_CHUNK), b""):
            digest.update(chunk)
        last = 0
        while os.read(self._ready, 1):
            batch = pickle.load(self._batches)
            yield from (Row(*row) for row in batch)
            last = batch[-1][0] if batch else last
        if self._wait() != 0:
            source.seek(self.offset)
            lines = CsvLines(source, None, first=self.first_line)
            yield from (row for row in judged_rows(self.header, lines) if row.line > last)

    def _wait(self) -> int:
        self.status = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.status


def _judge_into(
    path: str, offset: int, first_line: int, header: list[str], fd: int, told: int
) -> None:
    """The forked process: judge the file from ``offset``, a batch of rows at a time into
    ``fd`` with a byte on ``told`` after each, and exit (0 when every row was handed back).
    It touches nothing of its parent's but these."""
    status = 1
    try:
        with open(path, "rb") as source, open(fd, "wb") as out:
            source.seek(offset)  # its own offset: the parent reads the same file meanwhile
            rows = judged_rows(header, CsvLines(source, None, first=first_line))
            while batch := list(itertools.islice(rows, _HANDED_TOGETHER)):
                # Tuples: pickling a slotted dataclass costs a dataclasses.fields() call a row.
                pickle.dump(
                    [(row.line, row.values, row.errors) for row in batch],
                    out,
                    protocol=pickle.HIGHEST_PROTOCOL,
                )
                out.flush()
                os.write(told, b".")
        status = 0
    finally:
        with contextlib.suppress(OSError):
            os.close(told)
        os._exit(status)
