"""Integrations: settings validated by the plugin's schema, secrets encrypted, config file."""

from __future__ import annotations

from pathlib import Path

import pytest
from marshmallow import Schema, fields
from sqlalchemy import text

from core import Platform, hookimpl
from core.integrations import IntegrationError
from core.services import Services
from core.settings import ConfigError, Settings, load_config_file
from web.cli import cli

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
        ({"login": "shop@example.com", "api_key": "k", "list_rewards": "1=50"}, "LIST_ID:POINTS"),
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
