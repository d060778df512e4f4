"""Console admins: hashed passwords, and the lockout that doubles per account and per IP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from click.testing import Result
from flask import Flask

from pointbridge.access.users import LoginRefused, UserError, create_user, log_in
from pointbridge.services import Services
from pointbridge.storage.models import User

PASSWORD = "correct horse battery staple"


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at


def _refusal(
    services: Services,
    clock: Clock,
    password: str,
    ip: str = "10.0.0.1",
    email: str = "a@example.com",
) -> LoginRefused:
    with pytest.raises(LoginRefused) as refused:
        log_in(services.db, email, password, ip, now=clock)
    return refused.value


def test_the_password_is_stored_as_an_argon2id_hash(services: Services) -> None:
    create_user(services.db, "A@Example.com", PASSWORD)
    with services.db.read() as session:
        (user,) = session.query(User).all()
    assert user.email == "a@example.com"
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    assert log_in(services.db, "a@example.com", PASSWORD, "10.0.0.1").email == "a@example.com"
    with pytest.raises(UserError, match="exists already"):
        create_user(services.db, "a@example.com", PASSWORD)
    with pytest.raises(UserError, match="at least 12"):
        create_user(services.db, "b@example.com", "short")


def test_each_failure_past_five_doubles_the_wait_and_a_success_forgets(services: Services) -> None:
    create_user(services.db, "a@example.com", PASSWORD)
    clock = Clock()
    for _ in range(4):
        assert _refusal(services, clock, "wrong").retry_after is None
    assert _refusal(services, clock, "wrong").retry_after == 30
    # Locked: the right password is not even checked.
    assert _refusal(services, clock, PASSWORD).retry_after == 30
    clock.at += timedelta(seconds=30)
    assert _refusal(services, clock, "wrong").retry_after == 60
    clock.at += timedelta(seconds=60)
    assert log_in(services.db, "a@example.com", PASSWORD, "10.0.0.1", now=clock).id
    assert _refusal(services, clock, "wrong").retry_after is None


def test_one_address_guessing_many_accounts_is_locked(services: Services) -> None:
    create_user(services.db, "a@example.com", PASSWORD)
    clock = Clock()
    for number in range(19):
        _refusal(services, clock, "wrong", email=f"guess{number}@example.com")
    assert _refusal(services, clock, "wrong", email="guess19@example.com").retry_after == 30
    # The admin's own account is fine from another address, not from the guessing one.
    assert _refusal(services, clock, PASSWORD).retry_after == 30
    assert log_in(services.db, "a@example.com", PASSWORD, "10.0.0.2", now=clock).id


def test_users_create_asks_twice_or_reads_stdin(app: Flask, services: Services) -> None:
    from pointbridge.web.cli import cli

    runner = app.test_cli_runner()
    result: Result = runner.invoke(
        cli, ["users", "create", "a@example.com"], input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    assert "created admin a@example.com" in result.output
    result = runner.invoke(
        cli, ["users", "create", "b@example.com", "--password-stdin"], input="short\n"
    )
    assert result.exit_code == 1 and "at least 12 characters" in result.output
    result = runner.invoke(
        cli, ["users", "create", "b@example.com", "--password-stdin"], input=f"{PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    assert log_in(services.db, "b@example.com", PASSWORD, "10.0.0.1").email == "b@example.com"
