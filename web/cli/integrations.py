"""``pointbridge integrations``: add, configure, install, show, enable, disable and remove
integrations."""

from __future__ import annotations

import json

import click

from pointbridge.contract.errors import AuthError, ChoiceRequired, DeliveryError
from pointbridge.delivery.exports import activate
from pointbridge.integrations import IntegrationError
from pointbridge.storage.models import IntegrationRow, IntegrationStatus
from pointbridge.web.services import services


def parse_assignments(pairs: tuple[str, ...]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise IntegrationError(f"{pair!r} is not KEY=VALUE.")
        values[key.strip()] = value
    return values


def _install(name: str, *, resync: bool = False) -> None:
    svc = services()
    try:
        activation = activate(svc.db, svc.integrations, name, resync=resync)
    except ChoiceRequired as exc:
        click.echo(f"{exc}")
        for value, label in exc.options:
            click.echo(f"  {value}  {label}")
        raise click.ClickException(
            f"pick one: pointbridge integrations set {name} {exc.setting}=VALUE"
        ) from None
    except AuthError as exc:
        raise click.ClickException(f"{name}: {exc}") from None
    except DeliveryError as exc:
        raise click.ClickException(f"{name}: could not install: {exc}") from None
    result, job = activation.result, activation.export
    if result.created:
        click.echo(f"created: {', '.join(result.created)}")
    if result.existing:
        click.echo(f"already there: {', '.join(result.existing)}")
    if result.message:
        click.echo(result.message)
    click.echo(f"{name} is active")
    if job is None:
        if svc.host.platform(_row(name).platform).export_after_install:
            click.echo(
                f"every customer went to this target before, so none is sent again; "
                f"`pointbridge integrations install {name} --resync` sends them all"
            )
        return
    click.echo(
        f"initial sync of every customer queued (export {job.id}) for "
        f"{activation.initial_sync}: the worker runs it; follow it with "
        f"`pointbridge export {name} --status`, or run it here with `pointbridge export {name}`"
    )


def _row(name: str) -> IntegrationRow:
    svc = services()
    with svc.db.transaction() as session:
        return svc.integrations.get(session, name)


@click.group()
def integrations() -> None:
    """Connections to email platforms."""


@integrations.command("add")
@click.argument("name")
@click.option("--plugin", "platform", required=True, help="Platform name (see `plugins`).")
@click.option("--set", "pairs", multiple=True, metavar="KEY=VALUE", help="A setting.")
@click.option("--no-install", is_flag=True, help="Save only; install later.")
def add(name: str, platform: str, pairs: tuple[str, ...], no_install: bool) -> None:
    """Add an integration NAME using a platform, then check it and create its fields."""
    svc = services()
    with svc.db.transaction() as session:
        row = svc.integrations.add(session, name, platform, parse_assignments(pairs))
    click.echo(f"added integration {name} ({row.platform}, id {row.id})")
    if no_install:
        return
    try:
        _install(name)
    except click.ClickException as failed:
        failed.message += (
            f"\n{name} is saved but not active: fix it with `pointbridge integrations set "
            f"{name} KEY=VALUE`, or drop it with `pointbridge integrations remove {name}`"
        )
        raise


@integrations.command("set")
@click.argument("name")
@click.argument("pairs", nargs=-1, required=True, metavar="KEY=VALUE...")
def set_(name: str, pairs: tuple[str, ...]) -> None:
    """Change settings (platform settings, field_prefix, expiry_notice_days, list_rewards).

    New credentials, a new target or a new field prefix are checked at once by installing
    again, which resumes delivery of what waited."""
    svc = services()
    with svc.db.transaction() as session:
        row = svc.integrations.get(session, name)
        changed = svc.integrations.update(row, parse_assignments(pairs))
        disabled = row.status == IntegrationStatus.DISABLED
    click.echo(f"{name}: changed {', '.join(changed)}")
    if not svc.integrations.needs_install(changed):
        return
    if disabled:
        click.echo(f"{name} is disabled: `pointbridge integrations enable {name}` checks it")
        return
    click.echo(f"checking {name} with the new settings")
    _install(name)


@integrations.command("install")
@click.argument("name")
@click.option("--resync", is_flag=True, help="Send every customer again (an initial sync).")
def install(name: str, resync: bool) -> None:
    """Check the credentials and create the platform's fields (safe to repeat)."""
    _install(name, resync=resync)


@integrations.command("enable")
@click.argument("name")
def enable(name: str) -> None:
    """Install a disabled (or never installed) integration and sync to it again."""
    _install(name)


@integrations.command("list")
def list_() -> None:
    """One line per integration."""
    svc = services()
    with svc.db.read() as session:
        rows = session.query(IntegrationRow).order_by(IntegrationRow.name).all()
        for row in rows:
            error = f"  ({row.last_error})" if row.last_error else ""
            click.echo(f"{row.id:>4}  {row.name:<20} {row.platform:<14} {row.status}{error}")
    if not rows:
        click.echo("no integrations yet: pointbridge integrations add NAME --plugin PLATFORM")


@integrations.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--reveal-webhook-secret", is_flag=True, help="Print the webhook URL and secret in full."
)
def show(name: str, as_json: bool, reveal_webhook_secret: bool) -> None:
    """Settings (secrets redacted), status, webhook URL and secret (their tokens redacted)."""
    svc = services()
    with svc.db.read() as session:
        described = svc.integrations.describe(
            svc.integrations.get(session, name), reveal_webhook_secret=reveal_webhook_secret
        )
    if as_json:
        click.echo(json.dumps(described, indent=2, default=str))
        return
    for key, value in described.items():
        if isinstance(value, dict):
            click.echo(f"{key}:")
            for inner, inner_value in value.items():
                click.echo(f"  {inner}: {inner_value}")
        else:
            click.echo(f"{key}: {value}")


@integrations.command("rotate-webhook")
@click.argument("name")
@click.option(
    "--secret", "with_secret", is_flag=True, help="Also a new webhook secret (X-Secret-Key)."
)
def rotate_webhook(name: str, with_secret: bool) -> None:
    """A new webhook URL: the old one is refused from now on (for a leaked URL)."""
    svc = services()
    with svc.db.transaction() as session:
        row = svc.integrations.get(session, name)
        title = svc.host.platform(row.platform).title
        url = svc.integrations.rotate_webhook(row)
        secret = svc.integrations.rotate_webhook_secret(row) if with_secret else None
    click.echo(
        f"{name}: new webhook URL; the old one is refused from now on. Put this one in "
        f"{title} in its place:"
    )
    click.echo(url)
    if secret is not None:
        click.echo("New webhook secret; the old one is refused from now on:")
        click.echo(secret)


@integrations.command("disable")
@click.argument("name")
def disable(name: str) -> None:
    """Stop syncing to this integration (nothing more is queued for it)."""
    svc = services()
    with svc.db.transaction() as session:
        svc.integrations.disable(svc.integrations.get(session, name))
    click.echo(f"{name} is disabled")


@integrations.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask.")
def remove(name: str, yes: bool) -> None:
    """Delete the integration, what is queued for it and its list rewards' records."""
    svc = services()
    with svc.db.transaction() as session:
        row = svc.integrations.get(session, name)
        if not yes:
            click.confirm(
                f"Remove {name} ({row.platform}) and everything queued for it?", abort=True
            )
        svc.integrations.remove(session, row)
    click.echo(f"{name} is removed")
    if name in svc.settings.integrations:
        click.echo(
            f"[integrations.{name}] in the config file adds it again at the next start: "
            "delete that table too"
        )
