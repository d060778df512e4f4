"""The ``pointbridge`` command (click, through Flask's FlaskGroup)."""

from __future__ import annotations

from typing import Any

import click
from flask.cli import FlaskGroup, ScriptInfo

from pointbridge.errors import PointbridgeError
from pointbridge.web import create_app
from pointbridge.web.cli.customers import customers
from pointbridge.web.cli.expiry import expiry
from pointbridge.web.cli.export import export
from pointbridge.web.cli.integrations import integrations
from pointbridge.web.cli.ledger import ledger
from pointbridge.web.cli.new_plugin import new_plugin
from pointbridge.web.cli.outbox import outbox
from pointbridge.web.cli.system import db, plugins, run, tokens, worker


class PointbridgeGroup(FlaskGroup):
    """Runs every command inside the app context, and turns pointbridge's own errors into
    one line and a non-zero exit instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with ctx.ensure_object(ScriptInfo).load_app().app_context():
                return super().invoke(ctx)
        except PointbridgeError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(
    cls=PointbridgeGroup,
    create_app=create_app,
    add_default_commands=False,
    help="pointbridge: keeps loyalty data live in the shop's email platform.",
)
def cli() -> None:
    pass


for command in (
    run,
    worker,
    db,
    plugins,
    tokens,
    integrations,
    customers,
    ledger,
    outbox,
    expiry,
    export,
    new_plugin,
):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="pointbridge")
