"""``pointbridge customers``."""

from __future__ import annotations

import contextlib
import csv
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TextIO

import click
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.text import Text

from pointbridge.loyalty.customer_import import (
    BATCH_SIZE,
    CheckedRows,
    CheckResult,
    CustomerLoader,
    check_file,
    few_collections,
)
from pointbridge.loyalty.import_rows import ImportRefused, RowError
from pointbridge.loyalty.import_writer import ImportResult
from pointbridge.storage.db import Database
from pointbridge.storage.files import open_private
from pointbridge.web.services import services

SHOWN_ERRORS = 10


@click.group()
def customers() -> None:
    """The shop's customers."""


@customers.command("import")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check the whole file and stop: nothing is written.")
@click.option("--skip-invalid", is_flag=True, help="Import the valid rows of a file with errors.")
@click.option("--resume", is_flag=True, help="Continue after the last batch a stopped run wrote.")
@click.option(
    "--events",
    is_flag=True,
    help="Also send the events the REST API would for the same changes (tier, referral, PIN, "
    "opening balance, reward).",
)
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the bad rows (default: SOURCE.errors.csv).",
)
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=BATCH_SIZE, hidden=True)
def import_(
    source: Path,
    dry_run: bool,
    skip_invalid: bool,
    resume: bool,
    events: bool,
    report: Path | None,
    batch_size: int,
) -> None:
    """Create or update customers from a CSV file (see the README for the columns).

    The whole file is checked first; a file with bad rows changes nothing unless
    --skip-invalid. Exits 1 when any row was not imported.
    """
    report = report or source.with_name(source.name + ".errors.csv")
    svc = services()
    with few_collections(), CheckedRows() as rows:
        with source.open("rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            with _progress("checking", size, lambda _: stream.tell()) as progress:
                checked, shown = _check(stream, report, svc.db, progress, rows)
        _show_check(checked, shown, report)
        if dry_run or (checked.bad_rows and not skip_invalid):
            if checked.bad_rows and not dry_run:
                click.echo(
                    "Nothing imported: fix the rows in the report, or pass --skip-invalid to "
                    "import only the valid ones.",
                    err=True,
                )
            sys.exit(1 if checked.bad_rows else 0)
        loader = CustomerLoader(svc.db, svc.loyalty, events=events)
        with _progress("importing", checked.rows, lambda done: done) as progress:
            try:
                result = loader.load(
                    rows,
                    checked.fingerprint,
                    resume=resume,
                    batch_size=batch_size,
                    on_batch=lambda _, done: progress(done),
                )
            except ImportRefused as exc:
                raise click.ClickException(exc.message) from None
    click.echo(_summary(result))
    if result.skipped:
        sys.exit(1)


@contextlib.contextmanager
def _progress(
    label: str, total: int, done: Callable[[int], int]
) -> Iterator[Callable[[int], None]]:
    """On a terminal, a bar with rows/s and the time left (``done`` turns rows read into the
    units of ``total``); elsewhere (a pipe, a log, cron) nothing: the summary line says it
    all."""
    if not sys.stdout.isatty():
        yield lambda rows: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[rows]:,} rows"),
        _RowsPerSecond(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task(label, total=total, rows=0)
        yield lambda rows: progress.update(task, completed=done(rows), rows=rows)


class _RowsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0
        return Text(f"{task.fields['rows'] / elapsed:,.0f} rows/s" if elapsed else "")


def _check(
    stream: IO[bytes],
    report: Path,
    db: Database,
    progress: Callable[[int], None],
    keep: CheckedRows,
) -> tuple[CheckResult, list[RowError]]:
    shown: list[RowError] = []
    report.unlink(missing_ok=True)  # a report from an earlier run would describe another file
    with _ReportFile(report) as write:

        def on_error(error: RowError) -> None:
            write(error)
            if len(shown) < SHOWN_ERRORS:
                shown.append(error)

        try:
            checked = check_file(stream, on_error, db, on_rows=progress, keep=keep)
        except ImportRefused as exc:
            raise click.ClickException(exc.message) from None
    return checked, shown


def _show_check(checked: CheckResult, shown: list[RowError], report: Path) -> None:
    click.echo(f"checked {checked.rows} rows: {checked.bad_rows} bad")
    for error in shown:
        column = f", {error.column}" if error.column else ""
        click.echo(f"  line {error.line}{column}: {error.message}", err=True)
    if checked.bad_rows:
        click.echo(f"every bad row: {report}", err=True)


class _ReportFile:
    """The CSV of bad rows (line, column, error), created only when there is one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: TextIO | None = None
        self._writer: Any = None

    def __enter__(self) -> _ReportFile:
        return self

    def __call__(self, error: RowError) -> None:
        if self._writer is None:
            # The report quotes rows (e-mails): readable by the owner only, as exports are.
            self._file = open_private(self.path, "w", newline="")
            self._writer = csv.writer(self._file)
            self._writer.writerow(["line", "column", "error"])
        self._writer.writerow([error.line, error.column, error.message])

    def __exit__(self, *_: object) -> None:
        if self._file is not None:
            self._file.close()


def _summary(result: ImportResult) -> str:
    resumed = (
        f" (resumed after line {result.resumed_after_line})" if result.resumed_after_line else ""
    )
    return (
        f"created {result.created}, updated {result.updated}, unchanged {result.unchanged}, "
        f"opening balances credited {result.credited}, skipped {result.skipped}{resumed}"
    )
