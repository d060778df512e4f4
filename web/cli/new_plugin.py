"""``pointbridge new-plugin``."""

from __future__ import annotations

from pathlib import Path

import click

from pointbridge.new_plugin import write_plugin


@click.command("new-plugin")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    help="Where to write pointbridge-NAME/ (default: here).",
)
def new_plugin(name: str, directory: Path) -> None:
    """Write a working plugin for platform NAME: package, entry point, fake, contract tests."""
    target = write_plugin(name, directory)
    click.echo(f"wrote {target}")
    click.echo(f"next: pip install -e '{target}[testing]' && pytest {target}")
