"""The rows of a large CSV file read and judged on two cores: a forked process takes the
second half of the file while this one reads the first.

Reading and judging a row is most of the check's time, and the check runs before anything is
written, on one core of a box that has two. The file is read one line a record (no customer
field holds a line break), so it can be cut after any line; the second half's rows come back
through a temporary file, in their order, and a customer named on both sides is found by the
one ``once`` that sees every row, as in a single pass. The verdicts, their messages and the
file's digest are a single pass's.
"""

from __future__ import annotations

import itertools
import os
import signal
from collections.abc import Iterator
from typing import IO, Any

from pointbridge.loyalty.import_rows import (
    CheckedRows,
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
# Rows the second process hands back at a time.
_KEPT_TOGETHER = 5_000
_CHUNK = 2**20


def read_rows_split(source: IO[bytes], digest: Any) -> Iterator[Row]:
    """What ``read_rows(source, digest)`` gives, the second half of a large file judged by a
    forked process meanwhile. ``source`` must be at its start."""
    cut = _cut(source)
    if cut is None:
        yield from read_rows(source, digest)
        return
    offset, lines_before = cut
    # The header is read (and refused) before the fork, so the fork has it.
    header, lines = read_header(itertools.islice(source, lines_before), digest)
    with CheckedRows() as second:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the forked process, which never returns
            _judge_second_half(source.name, offset, lines_before + 1, header, second)
        fork = _Fork(pid)
        try:
            yield from once(
                itertools.chain(
                    judged_rows(header, lines),
                    _second_half(source, offset, lines_before + 1, header, digest, fork, second),
                )
            )
        finally:
            fork.stop()


def _second_half(
    source: IO[bytes],
    offset: int,
    first_line: int,
    header: list[str],
    digest: Any,
    fork: _Fork,
    judged: CheckedRows,
) -> Iterator[Row]:
    """The rows the forked process judged; judged here if it failed. ``source`` is at
    ``offset``: the first half is read."""
    for chunk in iter(lambda: source.read(_CHUNK), b""):
        digest.update(chunk)
    if fork.wait() == 0:
        yield from judged
        return
    source.seek(offset)
    yield from judged_rows(header, CsvLines(source, None, first=first_line))


def _cut(source: IO[bytes]) -> tuple[int, int] | None:
    """Where to cut the file (the byte offset just after a line break near its middle) and
    how many lines come before; None for a file read by one process (small, one core, not a
    file on disk)."""
    name = getattr(source, "name", None)
    if not isinstance(name, str) or not hasattr(os, "fork") or (os.cpu_count() or 1) < 2:
        return None
    fd = source.fileno()
    size = os.fstat(fd).st_size
    if size < SPLIT_BYTES:
        return None
    offset = size // 2
    while True:
        chunk = os.pread(fd, _CHUNK, offset)
        if not chunk:
            return None  # the middle is in the last line
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


def _judge_second_half(
    path: str, offset: int, first_line: int, header: list[str], kept: CheckedRows
) -> None:
    """The forked process: judge the file from ``offset`` into ``kept``, and exit (0 when
    every row is in ``kept``). It touches nothing of its parent's but the file it writes."""
    status = 1
    try:
        with open(path, "rb") as source:  # its own offset: the parent's file is read meanwhile
            source.seek(offset)
            lines = CsvLines(source, None, first=first_line)
            batch: list[Row] = []
            for row in judged_rows(header, lines):
                batch.append(row)
                if len(batch) == _KEPT_TOGETHER:
                    kept.add(batch)
                    batch = []
            kept.add(batch)
            kept.flush()
        status = 0
    finally:
        os._exit(status)


class _Fork:
    """The forked process, waited for once."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.status: int | None = None

    def wait(self) -> int:
        """Its exit status, once it has exited."""
        if self.status is None:
            self.status = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.status

    def stop(self) -> None:
        """Stop it if it still runs (the rows are no longer wanted: a refused file, an error)."""
        if self.status is None:
            os.kill(self.pid, signal.SIGTERM)
            self.wait()
