"""``pointbridge users``: the admins who log in to the console at /admin."""

from __future__ import annotations

import sys

import click

from pointbridge.access.users import create_user
from pointbridge.web.services import services


@click.group()
def users() -> None:
    """Admins of the console (/admin)."""


@users.command("create")
@click.argument("email")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input (scripts), not a prompt.",
)
def users_create(email: str, password_stdin: bool) -> None:
    """Create an admin; the password is asked twice (never an argument: shells log those)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    admin = create_user(services().db, email, password)
    click.echo(f"created admin {admin.email}: log in at {services().settings.public_url}/admin/")
