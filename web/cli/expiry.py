"""``pointbridge expiry``."""

from __future__ import annotations

from datetime import datetime

import click

from pointbridge.loyalty.expiry import Expiry
from pointbridge.scheduler import local_today
from pointbridge.web.services import services


@click.group()
def expiry() -> None:
    """Points expiry and pre-expiry notices."""


@expiry.command("run")
@click.option("--date", "day", type=click.DateTime(formats=["%Y-%m-%d"]), help="Default: today.")
@click.option("--dry-run", is_flag=True, help="Print what would happen; change nothing.")
def run_(day: datetime | None, dry_run: bool) -> None:
    """Expire due points and queue expiry notices for one day (idempotent)."""
    svc = services()
    target = day.date() if day else local_today(svc.settings.expiry_timezone)
    report = Expiry(svc.db, svc.loyalty).run_day(target, dry_run=dry_run)
    click.echo(report.summary())
    for email, points in report.sample_expired:
        click.echo(f"  expire {points} points of {email}")
    for integration, email, points, expires_on in report.sample_notices:
        click.echo(f"  notify {integration}: {email}, {points} points expire on {expires_on}")
