"""``pointbridge export``: every customer to one integration, or to a CSV file."""

from __future__ import annotations

import signal
import threading
from typing import Any

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from pointbridge.delivery.exports import (
    Exporter,
    cancel_export,
    export_failures,
    latest_export,
    progress_of,
    queue_export,
    write_csv,
)
from pointbridge.storage.files import open_private
from pointbridge.web.services import services


def run_export(name: str, *, restart: bool = False) -> None:
    """Run (or resume) the integration's export in the foreground with a progress bar."""
    svc = services()
    with svc.db.read() as session:
        integration_id = svc.integrations.get(session, name).id
    job = queue_export(svc.db, integration_id, restart=restart)
    if job.done:
        click.echo(f"resuming export {job.id} after {job.done} customers")
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    exporter = Exporter(svc.db, svc.integrations, svc.outbox, owner=f"cli-export-{job.id}")
    columns = (
        TextColumn(f"export to {name}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]:.0f}/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    try:
        with Progress(*columns, transient=False) as bar:
            task = bar.add_task("export", total=job.total or None, rate=0.0)

            def show(progress: Any) -> None:
                bar.update(task, completed=progress.done, total=progress.total, rate=progress.rate)

            result = exporter.run(job.id, stop=stop, on_progress=show)
    finally:
        signal.signal(signal.SIGINT, previous)
    _report(name, result)


def _report(name: str, result: Any) -> None:
    svc = services()
    if result.status == "finished":
        click.echo(
            f"export {result.job_id} finished: {result.done} customers sent, "
            f"{result.failed} refused, {result.deferred} left to the outbox to retry"
        )
        for failure in export_failures(svc.db, result.job_id, limit=50):
            click.echo(f"  refused {failure.email}: {failure.error}")
    elif result.status == "running":
        click.echo(
            f"export {result.job_id} stopped at {result.done} of {result.total}; "
            f"run `pointbridge export {name}` again to continue"
        )
    else:
        raise click.ClickException(
            f"export {result.job_id} {result.status}: {result.last_error or 'no error recorded'}"
        )


@click.command()
@click.argument("name")
@click.option(
    "--csv",
    "csv_file",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Write the platform's CSV import file instead of calling its API ('-': stdout).",
)
@click.option("--restart", is_flag=True, help="Start from the first customer again.")
@click.option("--cancel", is_flag=True, help="Cancel the integration's unfinished export.")
@click.option("--status", "show_status", is_flag=True, help="Show the export's progress.")
def export(name: str, csv_file: str | None, restart: bool, cancel: bool, show_status: bool) -> None:
    """Send every customer to integration NAME (resumable), or write them to a CSV file."""
    svc = services()
    if csv_file == "-":
        with click.open_file("-", "w") as stdout:
            write_csv(svc.db, svc.integrations, name, stdout)
        return
    if csv_file is not None:
        with open_private(csv_file, "w", newline="") as out:
            count = write_csv(svc.db, svc.integrations, name, out)
        click.echo(f"wrote {count} customers to {csv_file}")
        return
    with svc.db.read() as session:
        integration_id = svc.integrations.get(session, name).id
    if cancel:
        click.echo(f"cancelled {cancel_export(svc.db, integration_id)} export(s) of {name}")
        return
    if show_status:
        job = latest_export(svc.db, integration_id)
        if job is None:
            click.echo(f"{name} has no export yet")
            return
        progress = progress_of(job)
        eta = "-" if progress.eta_seconds is None else f"{progress.eta_seconds:.0f}s"
        click.echo(
            f"export {job.id} {progress.status}: {progress.done}/{progress.total}, "
            f"{progress.rate:.1f}/s, about {eta} left, {progress.failed} refused"
        )
        return
    run_export(name, restart=restart)
