"""The ``pointbridge`` command: pointbridge's commands only, each run inside the app."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import click
from flask.cli import ScriptInfo
from sqlalchemy.exc import OperationalError, ProgrammingError

from pointbridge.contract.errors import PointbridgeError
from pointbridge.plugins import PluginHost, allowed_plugins_from_env
from pointbridge.web import create_app
from pointbridge.web.cli.customers import customers
from pointbridge.web.cli.expiry import expiry
from pointbridge.web.cli.export import export
from pointbridge.web.cli.integrations import integrations
from pointbridge.web.cli.ledger import ledger
from pointbridge.web.cli.new_plugin import new_plugin
from pointbridge.web.cli.outbox import outbox
from pointbridge.web.cli.system import db, info, plugins, run, tokens, worker
from pointbridge.web.cli.users import users

# What SQLite and PostgreSQL say of a table or column an older schema lacks.
SCHEMA_BEHIND = ("no such table", "no such column", "UndefinedTable", "UndefinedColumn")


def schema_behind(error: OperationalError | ProgrammingError) -> bool:
    return any(sign in f"{type(error.orig).__name__} {error.orig}" for sign in SCHEMA_BEHIND)


class PointbridgeGroup(click.Group):
    """Runs every command inside the app context, and turns pointbridge's own errors (and a
    database not migrated yet) into one line and a non-zero exit instead of a traceback.

    A plain click group, not Flask's: no ``--app``, ``--debug`` or ``--env-file`` options,
    no Flask or extension commands; only pointbridge's."""

    def invoke(self, ctx: click.Context) -> Any:
        # Tests hand in their app through Flask's CLI runner, as a ScriptInfo.
        script = ctx.ensure_object(ScriptInfo)
        if script.create_app is None:
            script.create_app = create_app
        try:
            with script.load_app().app_context():
                return super().invoke(ctx)
        except PointbridgeError as exc:
            raise click.ClickException(str(exc)) from None
        except (OperationalError, ProgrammingError) as exc:
            if not schema_behind(exc):
                raise
            raise click.ClickException(
                "The database has no pointbridge tables, or older ones: run "
                "`pointbridge db upgrade`."
            ) from None


def print_version(ctx: click.Context, _: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(f"pointbridge {version('pointbridge')}")
    for plugin in PluginHost(allowed_plugins_from_env()).describe():
        click.echo(f"  plugin {plugin['name']}: {plugin['package']} {plugin['version']}")
    ctx.exit()


@click.group(
    cls=PointbridgeGroup,
    help="pointbridge: keeps loyalty data live in the shop's email platform.",
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=print_version,
    help="Print pointbridge's version and each plugin's.",
)
def cli() -> None:
    pass


for command in (
    run,
    worker,
    db,
    info,
    plugins,
    tokens,
    integrations,
    customers,
    ledger,
    outbox,
    expiry,
    export,
    new_plugin,
    users,
):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="pointbridge")
