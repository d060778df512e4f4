"""``pointbridge outbox``: deliver now, see what waits, replay dead letters, purge."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from pointbridge.delivery import admin as outbox_admin
from pointbridge.storage.sql import MAX_ID
from pointbridge.web.services import services


@click.group()
def outbox() -> None:
    """The queue of contact updates and events waiting for delivery."""


@outbox.command("drain")
@click.option("--timeout", type=float, default=None, help="Give up after this many seconds.")
def drain(timeout: float | None) -> None:
    """Deliver everything that is due now, then exit."""
    result = services().worker().drain(timeout=timeout)
    click.echo(f"delivered {result.delivered}, failed {result.failed}")


@outbox.command("status")
def status() -> None:
    """Pending, retrying and dead rows per integration, and the oldest waiting."""
    lines = outbox_admin.outbox_status(services().db)
    click.echo(
        f"{'integration':<20} {'state':<9} {'pending':>8} {'retrying':>8} {'dead':>6}  oldest"
    )
    for line in lines:
        age = "-" if line.oldest_pending_seconds is None else f"{line.oldest_pending_seconds:.0f}s"
        click.echo(
            f"{line.integration:<20} {line.status:<9} {line.pending:>8} {line.retrying:>8} "
            f"{line.dead:>6}  {age}"
        )


@outbox.command("dead")
@click.option("--integration", help="Only this integration.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, MAX_ID))
def dead(integration: str | None, limit: int) -> None:
    """Dead letters with their last error."""
    letters = outbox_admin.dead_letters(services().db, integration, limit)
    for letter in letters:
        what = letter.event_type or letter.kind
        click.echo(
            f"{letter.id:>8}  {letter.integration:<16} {letter.customer_email:<32} {what:<15} "
            f"after {letter.attempts} attempts: {letter.last_error}"
        )
    if not letters:
        click.echo("no dead letters")


@outbox.command("retry")
@click.option("--integration", help="Only this integration (also lifts its failing state).")
@click.option("--id", "ids", multiple=True, type=click.IntRange(1, MAX_ID), help="Only these rows.")
def retry(integration: str | None, ids: tuple[int, ...]) -> None:
    """Send dead letters again."""
    result = outbox_admin.retry(services().db, integration, ids)
    for name in result.reactivated:
        click.echo(f"{name} is active again")
    click.echo(f"{result.revived} dead letters queued again")
    services().outbox.wake()


@outbox.command("purge")
@click.option(
    "--delivered-before",
    required=True,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Delete delivered rows older than this date (YYYY-MM-DD).",
)
def purge(delivered_before: datetime) -> None:
    """Delete old delivered rows; pending and dead ones are kept."""
    removed = outbox_admin.purge(services().db, delivered_before.replace(tzinfo=UTC))
    click.echo(f"purged {removed} delivered rows")
