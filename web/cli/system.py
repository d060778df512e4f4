"""Serving, the standalone worker, migrations, plugins and API tokens."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from importlib.metadata import version
from typing import Any

import click
from flask import current_app

from pointbridge.access.tokens import create_token, list_tokens, revoke_token
from pointbridge.storage.migrate import upgrade
from pointbridge.storage.secrets import KEY_FILE, load_key
from pointbridge.storage.sql import MAX_ID
from pointbridge.web.referrals import startup_warnings
from pointbridge.web.services import services


def sync_config() -> None:
    svc = services()
    with svc.db.transaction() as session:
        for line in svc.integrations.sync_config(session):
            click.echo(f"config: {line}")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="Web processes; above 1 they are gunicorn's, one per core is a good start.",
)
@click.option(
    "--threads", default=8, show_default=True, type=click.IntRange(1), help="Per web process."
)
@click.option("--no-worker", is_flag=True, help="Leave delivery to separate `pointbridge worker`s.")
def run(host: str, port: int, workers: int, threads: int, no_worker: bool) -> None:
    """Serve the API and webhooks; the scheduler and a delivery worker run once, in this
    process. SIGTERM lets requests in progress and the current delivery batch finish."""
    from pointbridge.delivery.background import tune_garbage_collector
    from pointbridge.web.serve import serve_in_process, serve_with_gunicorn

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    svc = services()
    sync_config()
    with svc.db.read() as session:
        for warning in startup_warnings(svc.settings, session):
            click.echo(warning, err=True)
    tune_garbage_collector()
    processes = "1 process" if workers == 1 else f"{workers} web processes"
    click.echo(
        f"pointbridge is serving on http://{host}:{port}/ (API docs: /api/docs): "
        f"{processes} x {threads} threads"
    )
    if workers == 1:
        app = current_app._get_current_object()
        serve_in_process(svc, app, host=host, port=port, threads=threads, worker=not no_worker)
        return
    status = serve_with_gunicorn(
        svc, host=host, port=port, workers=workers, threads=threads, worker=not no_worker
    )
    if status:
        raise click.ClickException(f"gunicorn exited with status {status}")


@click.command()
@click.option(
    "--idle",
    default=1.0,
    show_default=True,
    help="Seconds between polls when idle (on PostgreSQL a commit wakes it at once).",
)
@click.option("--lease", default=30.0, show_default=True, help="Sending lease in seconds.")
def worker(idle: float, lease: float) -> None:
    """Deliver the outbox until stopped (SIGTERM or Ctrl-C finish the current batch)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    stop = threading.Event()

    def _stop(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    from pointbridge.delivery.background import start_background, tune_garbage_collector

    svc = services()
    tune_garbage_collector()
    threads = start_background(svc, stop, idle=idle, lease_seconds=lease)
    click.echo("worker delivering; stop with Ctrl-C or SIGTERM")
    for thread in threads:
        thread.join()


@click.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema to the latest version."""
    svc = services()
    settings = svc.settings
    svc.db.create_file()
    # Some migrations encrypt what earlier revisions stored in clear.
    upgrade(settings.database_url, secret_key=load_key(settings.secret_key, settings.instance_path))
    click.echo(
        f"database at {svc.db.engine.url.render_as_string(hide_password=True)} is up to date"
    )
    sync_config()


@click.command()
def info() -> None:
    """Where the instance folder, the database, the key and the config file are."""
    settings = services().settings
    key_file = settings.instance_path / KEY_FILE
    if settings.secret_key:
        key = "POINTBRIDGE_SECRET_KEY (environment)"
    else:
        key = f"{key_file}{'' if key_file.exists() else ' (not generated yet)'}"
    database = services().db.engine.url.render_as_string(hide_password=True)
    config = os.environ.get("POINTBRIDGE_CONFIG") or "none (POINTBRIDGE_CONFIG is not set)"
    click.echo(f"pointbridge {version('pointbridge')}")
    click.echo(f"instance:  {settings.instance_path}")
    click.echo(f"database:  {database}")
    click.echo(f"key:       {key}")
    click.echo(f"config:    {config}")
    click.echo(f"public URL: {settings.public_url}")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins(as_json: bool) -> None:
    """List installed plugins: name, package, version, hooks and platforms."""
    described = services().host.describe()
    if as_json:
        click.echo(json.dumps(described, indent=2))
        return
    for plugin in described:
        click.echo(f"{plugin['name']}  {plugin['package']} {plugin['version']}")
        click.echo(f"  hooks: {', '.join(plugin['hooks'])}")
        for platform in plugin["platforms"]:
            caps = ", ".join(platform["capabilities"]) or "contacts only"
            click.echo(
                f"  platform {platform['name']} ({platform['title']}): {caps}; "
                f"batch {platform['max_batch']}; rate {platform['rate_limit'] or 'unlimited'}"
            )


@click.group()
def tokens() -> None:
    """REST API tokens."""


@tokens.command("create")
@click.option("--name", default="api", show_default=True, help="What the token is for.")
def tokens_create(name: str) -> None:
    """Create an API token; it is shown once, store it now."""
    with services().db.transaction() as session:
        token = create_token(session, name)
    click.echo(token)


@tokens.command("list")
def tokens_list() -> None:
    """One line per token: id, name, hint, created, last used (never the token itself)."""
    with services().db.read() as session:
        found = list_tokens(session)
    for token in found:
        last_used = f"{token.last_used_at:%Y-%m-%d %H:%M %Z}" if token.last_used_at else "never"
        click.echo(
            f"{token.id:>4}  {token.name:<20} {token.hint}…  "
            f"created {token.created_at:%Y-%m-%d %H:%M %Z}  last used {last_used}"
        )
    if not found:
        click.echo("no API tokens yet: pointbridge tokens create --name NAME")


@tokens.command("revoke")
# Ids beyond a 64-bit integer cannot exist, and would overflow the database's integer.
@click.argument("token_id", metavar="ID", type=click.IntRange(1, MAX_ID))
def tokens_revoke(token_id: int) -> None:
    """Revoke a token: the next request that sends it is refused."""
    with services().db.transaction() as session:
        revoked = revoke_token(session, token_id)
    if revoked is None:
        raise click.ClickException(f"no API token with id {token_id} (see pointbridge tokens list)")
    click.echo(f"revoked token {revoked.id} ({revoked.name}, {revoked.hint}…)")
