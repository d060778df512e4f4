"""Integrations: settings validated by the plugin's schema, secrets encrypted, config file."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from marshmallow import Schema, fields
from sqlalchemy import text

from pointbridge import Capability, Integration, ListSubscription, Platform, hookimpl
from pointbridge.integrations import SYNCED_PREFIX, IntegrationError
from pointbridge.services import Services
from pointbridge.settings import ConfigError, Settings, load_config_file
from pointbridge.web.cli import cli

API_KEY = "sk-live-1234567890abcdef"


class VaultSettings(Schema):
    login = fields.Email(required=True)
    api_key = fields.String(required=True, metadata={"secret": True})
    api_url = fields.Url(load_default="https://api.vault.example/")


class VaultPlugin:
    @hookimpl
    def register_platforms(self, register):
        register(Platform(name="vault", title="Vault", settings_schema=VaultSettings))


@pytest.fixture
def vault(services: Services) -> Services:
    services.host.register(VaultPlugin(), "vault")
    return services


def test_secrets_are_encrypted_at_rest_and_redacted_when_shown(vault: Services) -> None:
    with vault.db.transaction() as session:
        row = vault.integrations.add(
            session, "v", "vault", {"login": "shop@example.com", "api_key": API_KEY}
        )
    with vault.db.engine.connect() as connection:
        raw = connection.execute(text("SELECT settings, secrets FROM integration")).one()
    assert API_KEY not in str(raw.settings) and API_KEY.encode() not in bytes(raw.secrets)

    view = vault.integrations.view(row)
    assert view.settings["api_key"] == API_KEY
    assert view.settings["api_url"] == "https://api.vault.example/"

    shown = vault.integrations.describe(row)
    assert API_KEY not in str(shown)
    assert shown["settings"]["api_key"].startswith("sk") and "•" in shown["settings"]["api_key"]


def test_the_cli_never_prints_a_secret(vault: Services, app) -> None:
    runner = app.test_cli_runner()
    added = runner.invoke(
        cli,
        [
            "integrations",
            "add",
            "v",
            "--plugin",
            "vault",
            "--no-install",
            "--set",
            "login=shop@example.com",
            "--set",
            f"api_key={API_KEY}",
        ],
    )
    assert added.exit_code == 0, added.output
    shown = runner.invoke(cli, ["integrations", "show", "v"])
    assert shown.exit_code == 0 and API_KEY not in shown.output
    listed = runner.invoke(cli, ["integrations", "list"])
    assert "v " in listed.output and API_KEY not in listed.output


@pytest.mark.parametrize(
    "values,message",
    [
        ({"login": "shop@example.com"}, "api_key"),
        ({"login": "not-an-email", "api_key": "k"}, "login"),
        ({"login": "shop@example.com", "api_key": "k", "colour": "red"}, "no setting colour"),
        ({"login": "shop@example.com", "api_key": "k", "expiry_notice_days": "7"}, "no events"),
        (
            {"login": "shop@example.com", "api_key": "k", "disabled_events": "pin-changed"},
            "no events",
        ),
        ({"login": "shop@example.com", "api_key": "k", "list_rewards": "1=50"}, "LIST_ID:POINTS"),
        # A reward no transaction may carry would make every subscription webhook fail.
        (
            {"login": "shop@example.com", "api_key": "k", "list_rewards": "1:" + "9" * 30},
            "between 1 and 1,000,000,000",
        ),
    ],
)
def test_invalid_settings_are_refused_with_what_to_fix(vault: Services, values, message) -> None:
    with pytest.raises(IntegrationError, match=message), vault.db.transaction() as session:
        vault.integrations.add(session, "v", "vault", values)


def test_the_cli_reports_bad_input_in_one_line_and_exits_non_zero(app) -> None:
    result = app.test_cli_runner().invoke(cli, ["integrations", "add", "x", "--plugin", "nope"])
    assert result.exit_code == 1
    assert "No installed plugin provides platform 'nope'" in result.output
    assert "Traceback" not in result.output


def test_integrations_declared_in_the_config_file_are_upserted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vault: Services
) -> None:
    config = tmp_path / "pointbridge.toml"
    config.write_text(
        """
[pointbridge]
points_validity_days = 365

[integrations.shop]
plugin = "vault"
field_prefix = "mehub_"
[integrations.shop.settings]
login = "shop@example.com"
api_key = "${VAULT_KEY}"
"""
    )
    monkeypatch.setenv("VAULT_KEY", API_KEY)
    loaded = load_config_file(config)
    assert loaded["points_validity_days"] == 365
    vault.settings.integrations = loaded["integrations"]
    with vault.db.transaction() as session:
        assert vault.integrations.sync_config(session) == ["added shop"]
    with vault.db.transaction() as session:
        assert vault.integrations.sync_config(session) == ["updated shop"]
        row = vault.integrations.get(session, "shop")
        assert row.field_prefix == "mehub_"
        assert vault.integrations.view(row).settings["api_key"] == API_KEY

    monkeypatch.delenv("VAULT_KEY")
    with pytest.raises(ConfigError, match="VAULT_KEY"):
        load_config_file(config)


def test_settings_come_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("POINTBRIDGE_INSTANCE", str(tmp_path))
    monkeypatch.setenv("POINTBRIDGE_PUBLIC_URL", "https://loyalty.example.com")
    monkeypatch.delenv("POINTBRIDGE_DATABASE_URL", raising=False)
    settings = Settings.from_env()
    assert settings.database_url == f"sqlite:///{tmp_path / 'pointbridge.sqlite3'}"
    assert settings.referral_prefix == "https://loyalty.example.com/r/"


# pointbridge never rewards its own writes ---------------------------------------------------


class SyncSettings(Schema):
    list_id = fields.String(load_default="")
    other = fields.String(load_default="")


def _synced_list(integration: Integration) -> set[str]:
    return {integration.settings["list_id"]} if integration.settings["list_id"] else set()


class SyncingPlugin:
    """A platform that subscribes every customer to ``list_id`` and reports subscriptions."""

    @hookimpl
    def register_platforms(self, register):
        register(
            Platform(
                name="syncing",
                title="Syncing",
                settings_schema=SyncSettings,
                capabilities=frozenset({Capability.WEBHOOKS}),
                written_lists=_synced_list,
            )
        )

    @hookimpl
    def handle_webhook(self, integration, request):
        body = request.json()
        return [ListSubscription(body["email"], body["list_id"], body["subscribed"])]


@pytest.fixture
def syncing(services: Services) -> Services:
    services.host.register(SyncingPlugin(), "syncing")
    return services


def test_a_reward_on_a_list_pointbridge_writes_to_is_refused(syncing: Services) -> None:
    def change(values: dict[str, str]) -> None:
        with syncing.db.transaction() as session:
            syncing.integrations.update(syncing.integrations.get(session, "s"), values)

    refused = "pointbridge itself adds every customer to Syncing list 1"
    with pytest.raises(IntegrationError, match=refused), syncing.db.transaction() as session:
        syncing.integrations.add(session, "s", "syncing", {"list_id": "1", "list_rewards": "1:50"})
    with syncing.db.transaction() as session:
        syncing.integrations.add(session, "s", "syncing", {"list_id": "1", "list_rewards": "2:50"})
    with pytest.raises(IntegrationError, match="Reward a different list"):
        change({"list_rewards": "1:50,2:50"})
    # Syncing into the rewarded list is the same mistake made the other way round.
    with pytest.raises(IntegrationError, match=r"Syncing list 2 \(it syncs"):
        change({"list_id": "2"})
    with syncing.db.transaction() as session:
        row = syncing.integrations.get(session, "s")
        assert (row.settings["list_id"], row.list_rewards) == ("1", {"2": 50})


def test_a_subscription_to_a_list_pointbridge_writes_to_credits_nothing(
    syncing: Services, client, auth
) -> None:
    with syncing.db.transaction() as session:
        row = syncing.integrations.add(session, "s", "syncing", {"list_id": "1"})
        # A reward from before pointbridge refused them: kept, so old config files still load.
        row.list_rewards = {"1": 50}
        syncing.integrations.update(row, {"other": "changed"})
        syncing.loyalty.create_customer(session, {"email": "jana@example.com"})
        path = urlsplit(syncing.integrations.webhook_url(row)).path

    body = {"email": "jana@example.com", "list_id": "1", "subscribed": True}
    answer = client.post(path, json=body)
    assert answer.status_code == 200
    assert "Ignored" in answer.json["message"]
    assert "which pointbridge writes to itself" in answer.json["message"]
    customer = client.get("/api/customers?email=jana@example.com", headers=auth).json["items"][0]
    assert customer["balance"] == 0
    ledger = client.get(f"/api/customers/{customer['id']}/ledger", headers=auth).json["items"]
    assert ledger == []


def test_a_list_id_longer_than_pointbridge_stores_is_refused(vault: Services) -> None:
    with vault.db.transaction() as session, pytest.raises(IntegrationError, match="1 to 100"):
        vault.integrations.add(
            session,
            "v",
            "vault",
            {"login": "shop@example.com", "api_key": API_KEY, "list_rewards": "1" * 101 + ":5"},
        )


def test_a_new_field_prefix_sends_every_customer_again_as_a_new_target_does(
    services: Services, app, tmp_path: Path
) -> None:
    """Under a new prefix every field the platform gets is a new, empty one: the install
    that the change runs sends every customer again, or segments would read empty fields until
    each customer next changed. The same prefix installed again sends nobody."""
    runner = app.test_cli_runner()

    def run(*args: str) -> str:
        result = runner.invoke(cli, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    with services.db.transaction() as session:
        services.loyalty.create_customer(session, {"email": "jana@example.com"})
    added = run("integrations", "add", "dry", "--plugin", "jsonl", "--set", f"path={tmp_path}/d")
    assert "queued (export 1) for its first activation" in added
    assert "none is sent again" in run("integrations", "install", "dry")

    moved = run("integrations", "set", "dry", "field_prefix=shop_")
    assert "initial sync of every customer queued (export 2) for its new target" in moved
    assert "none is sent again" in run("integrations", "install", "dry")
    # A host setting of pointbridge's own changes no field and sends nobody.
    assert "queued" not in run("integrations", "set", "dry", "disabled_events=pin-changed")


def test_an_integration_synced_before_prefixes_were_recorded_is_not_sent_again(
    services: Services, tmp_path: Path
) -> None:
    with services.db.transaction() as session:
        services.integrations.add(session, "dry", "jsonl", {"path": str(tmp_path / "d")})
    services.integrations.install(services.db, "dry")
    assert services.integrations.claim_initial_sync(services.db, "dry") is not None
    with services.db.transaction() as session:
        row = services.integrations.get(session, "dry")
        row.data = {k: v for k, v in row.data.items() if k != SYNCED_PREFIX}  # as upgraded

    # Re-installing the same target after the upgrade costs no sync of every customer ...
    assert services.integrations.claim_initial_sync(services.db, "dry") is None
    # ... and from then on a new prefix is one.
    with services.db.transaction() as session:
        services.integrations.update(
            services.integrations.get(session, "dry"), {"field_prefix": "x_"}
        )
    assert services.integrations.claim_initial_sync(services.db, "dry") is not None
