"""``pointbridge customers``."""

from __future__ import annotations

from typing import TextIO

import click

from pointbridge.imports import import_customers
from pointbridge.web.services import services


@click.group()
def customers() -> None:
    """The shop's customers."""


@customers.command("import")
@click.argument("source", type=click.File("r", encoding="utf-8-sig"))
def import_(source: TextIO) -> None:
    """Create or update customers from a CSV file (streamed; see the README for columns)."""
    svc = services()
    report = import_customers(svc.db, svc.loyalty, source)
    click.echo(f"created {report.created}, updated {report.updated}, skipped {len(report.errors)}")
    for error in report.errors[:50]:
        click.echo(f"  {error}", err=True)
    if len(report.errors) > 50:
        click.echo(f"  … and {len(report.errors) - 50} more", err=True)
