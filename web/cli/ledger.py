"""``pointbridge ledger``."""

from __future__ import annotations

import click

from pointbridge.loyalty.audit import AuditReport, audit_balances
from pointbridge.web.services import services


@click.group()
def ledger() -> None:
    """The points ledger."""


@ledger.command("verify")
def verify() -> None:
    """Check every balance against the ledger and the open lots; exit 1 on any mismatch."""
    report = AuditReport()
    for mismatch in audit_balances(services().db, report):
        click.echo(mismatch.describe())
    if report.mismatches:
        raise click.ClickException(
            f"{report.mismatches} of {report.customers} customers have a balance that "
            "disagrees with their ledger or lots."
        )
    click.echo(f"All {report.customers} balances match their ledger and lots.")
