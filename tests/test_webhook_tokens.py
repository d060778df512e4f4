"""A webhook URL's token is a credential (Ecomail's only one): stored hashed and encrypted,
shown redacted unless revealed, rotated on demand, and converted by migration 0004."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from sqlalchemy import create_engine, text

from pointbridge.services import Services
from pointbridge.settings import Settings
from pointbridge.storage.migrate import SecretKeyRequired, downgrade, upgrade
from pointbridge.storage.models import IntegrationStatus
from pointbridge.storage.secrets import load_key
from pointbridge.testing.databases import fresh_postgres_database
from pointbridge.web import create_app
from pointbridge.web.cli import cli

UNKNOWN_URL = "Unknown webhook URL: copy it again from the integration."


@pytest.fixture
def shop(services: Services, tmp_path: Path) -> str:
    """A jsonl integration "shop" rewarding list 1, and a customer; returns its webhook URL."""
    with services.db.transaction() as session:
        row = services.integrations.add(
            session, "shop", "jsonl", {"path": str(tmp_path / "o.jsonl"), "list_rewards": "1:50"}
        )
        services.loyalty.create_customer(session, {"email": "jana@example.com"})
        return services.integrations.webhook_url(row)


def _post(app: Flask, url: str) -> tuple[int, str]:
    body = {"email": "jana@example.com", "list_id": "1", "subscribed": True}
    response = app.test_client().post(urlsplit(url).path, json=body)
    return response.status_code, response.json["message"]


def _show(app: Flask, *flags: str) -> str:
    result = app.test_cli_runner().invoke(cli, ["integrations", "show", "shop", *flags])
    assert result.exit_code == 0, result.output
    return result.output


def test_the_token_is_never_stored_in_clear(services: Services, shop: str) -> None:
    token = shop.rsplit("/", 1)[1]
    with services.db.engine.connect() as connection:
        row = connection.execute(text("SELECT * FROM integration")).mappings().one()
    for value in row.values():
        stored = bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()
        assert token.encode() not in stored
    assert row["webhook_token_hash"] == hashlib.sha256(token.encode()).hexdigest()


def test_show_redacts_the_webhook_url_unless_revealed(app: Flask, shop: str) -> None:
    token = shop.rsplit("/", 1)[1]
    shown = _show(app)
    assert token not in shown
    assert f"webhook_url: {shop.rsplit('/', 1)[0]}/{token[:2]}••••••{token[-2:]}" in shown
    assert f"webhook_url: {shop}" in _show(app, "--reveal-webhook-secret")


def test_rotating_refuses_the_old_url_at_once_and_prints_the_new_one(
    app: Flask, services: Services, shop: str
) -> None:
    result = app.test_cli_runner().invoke(cli, ["integrations", "rotate-webhook", "shop"])
    assert result.exit_code == 0, result.output
    (new_url,) = [line for line in result.output.splitlines() if line.startswith("http")]
    assert new_url != shop and new_url.rsplit("/", 1)[0] == shop.rsplit("/", 1)[0]
    assert "old one is refused" in result.output

    assert _post(app, shop) == (401, UNKNOWN_URL)
    status, message = _post(app, new_url)
    assert status == 200 and "+50" in message
    assert f"webhook_url: {new_url}" in _show(app, "--reveal-webhook-secret")


def test_rotating_with_secret_also_replaces_the_webhook_secret(
    app: Flask, services: Services, shop: str
) -> None:
    with services.db.read() as session:
        old_secret = services.integrations.webhook_secret(
            services.integrations.get(session, "shop")
        )

    result = app.test_cli_runner().invoke(
        cli, ["integrations", "rotate-webhook", "shop", "--secret"]
    )

    assert result.exit_code == 0, result.output
    new_secret = result.output.splitlines()[-1]
    with services.db.read() as session:
        stored = services.integrations.webhook_secret(services.integrations.get(session, "shop"))
    assert stored == new_secret != old_secret and old_secret not in result.output


# Migration 0004 on a database that already holds integrations -----------------------------

CLEAR_TOKEN = "an-old-clear-token-0123456789abcdef"
SECRET_KEY = "tests-only-secret-key"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_at_0003(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own at revision 0003: integration 1 rewards list 1, its webhook token
    in clear as that revision stored it; a customer."""

    def prepared(url: str) -> str:
        upgrade(url, "0003")
        engine = create_engine(url)
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO integration (id, name, platform, settings, data, field_prefix,"
                    " list_rewards, status, webhook_token, webhook_secret, created_at,"
                    " updated_at) VALUES (1, 'shop', 'jsonl', :settings, '{}', 'ellity_',"
                    " :rewards, 'active', :token, :secret, :now, :now)"
                ),
                {
                    "settings": json.dumps({"path": str(tmp_path / "o.jsonl")}),
                    "rewards": json.dumps({"1": 50}),
                    "token": CLEAR_TOKEN,
                    "secret": _fernet().encrypt(b"whsec"),
                    "now": datetime(2026, 1, 1, tzinfo=UTC),
                },
            )
            connection.execute(
                text(
                    "INSERT INTO customer (email, referral_code, registered, balance, missions,"
                    " rewards, referrals, created_at, updated_at) VALUES ('jana@example.com',"
                    " 'R1', true, 0, 0, 0, 0, :now, :now)"
                ),
                {"now": datetime(2026, 1, 1, tzinfo=UTC)},
            )
        engine.dispose()
        return url

    if request.param == "sqlite":
        yield prepared(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    else:
        with fresh_postgres_database() as url:
            yield prepared(url)


def _fernet() -> Fernet:
    return Fernet(load_key(SECRET_KEY, Path("unused")))


@pytest.fixture
def old_app(database_at_0003: str, tmp_path: Path) -> Iterator[Flask]:
    settings = Settings(
        instance_path=tmp_path / "instance",
        database_url=database_at_0003,
        secret_key=SECRET_KEY,
        public_url="http://pointbridge.test",
    )
    app = create_app(settings)
    yield app
    app.extensions["pointbridge"].db.dispose()


def test_upgrading_without_the_key_stops_with_one_line_and_changes_nothing(
    database_at_0003: str,
) -> None:
    with pytest.raises(SecretKeyRequired) as refused:
        upgrade(database_at_0003)
    message = str(refused.value)
    assert "\n" not in message
    assert "encrypt the webhook tokens of 1 integration(s)" in message
    assert "pointbridge db upgrade" in message
    engine = create_engine(database_at_0003)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == (
            "0003"
        )
        assert connection.execute(text("SELECT webhook_token FROM integration")).scalar() == (
            CLEAR_TOKEN
        )
    engine.dispose()


def test_db_upgrade_keeps_the_old_url_working_and_shown(old_app: Flask) -> None:
    upgraded = old_app.test_cli_runner().invoke(cli, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    old_url = f"http://pointbridge.test/webhooks/1/{CLEAR_TOKEN}"

    status, message = _post(old_app, old_url)
    assert status == 200 and "+50" in message
    assert f"webhook_url: {old_url}" in _show(old_app, "--reveal-webhook-secret")
    url = old_app.extensions["pointbridge"].settings.database_url
    engine = create_engine(url)
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT * FROM integration")).mappings().one()
    engine.dispose()
    assert "webhook_token" not in stored
    assert _fernet().decrypt(bytes(stored["webhook_token_encrypted"])).decode() == CLEAR_TOKEN

    downgrade(url, "0003", secret_key=load_key(SECRET_KEY, Path("unused")))
    engine = create_engine(url)
    with engine.connect() as connection:
        restored = connection.execute(text("SELECT webhook_token FROM integration")).scalar()
    engine.dispose()
    assert restored == CLEAR_TOKEN


def test_a_change_another_process_made_is_seen_by_the_next_webhook(
    app: Flask, services: Services, shop: str
) -> None:
    """This process keeps each integration's view between webhooks (the settings schema and
    the decryptions cost more than the points): it must never outlive a change."""
    assert _post(app, shop)[0] == 200  # the view of "shop" is now kept
    elsewhere = Services.build(services.settings, services.host)
    with elsewhere.db.transaction() as session:
        row = elsewhere.integrations.get(session, "shop")
        elsewhere.integrations.update(row, {"list_rewards": "1:50,2:80"})
        new_secret = elsewhere.integrations.rotate_webhook_secret(row)

    body = {"email": "jana@example.com", "list_id": "2", "subscribed": True}
    response = app.test_client().post(urlsplit(shop).path, json=body)
    assert response.status_code == 200 and "+80" in response.json["message"]
    with services.db.read() as session:
        target = services.webhook_targets.find(session, *urlsplit(shop).path.split("/")[2:])
    assert target is not None and target.view().webhook_secret == new_secret

    with elsewhere.db.transaction() as session:
        elsewhere.integrations.get(session, "shop").status = IntegrationStatus.DISABLED
    assert _post(app, shop)[0] == 403
    elsewhere.db.dispose()
