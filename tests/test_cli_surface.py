"""The ``pointbridge`` command as a new user meets it: its own commands and options only, its
and the plugins' versions, one line on a database not migrated, and where its files are."""

from __future__ import annotations

import sqlite3
from importlib.metadata import version
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pointbridge.plugins import PluginHost
from pointbridge.web.cli import cli

FLASK_OPTIONS = ("--app", "-A", "--debug", "--env-file", "-e ")
FLASK_COMMANDS = ("shell", "routes", "openapi")


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "instance"
    monkeypatch.setenv("POINTBRIDGE_INSTANCE", str(folder))
    monkeypatch.delenv("POINTBRIDGE_DATABASE_URL", raising=False)
    monkeypatch.delenv("POINTBRIDGE_CONFIG", raising=False)
    monkeypatch.delenv("POINTBRIDGE_SECRET_KEY", raising=False)
    return folder


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_help_lists_pointbridges_commands_only(instance: Path) -> None:
    shown = invoke("--help")
    assert shown.exit_code == 0
    commands = shown.output.split("Commands:", 1)[1].split()
    for ours in ("run", "worker", "db", "info", "integrations", "tokens", "export", "outbox"):
        assert ours in commands
    for theirs in FLASK_COMMANDS:
        assert theirs not in commands
    options = shown.output.split("Commands:", 1)[0]
    for flask_option in FLASK_OPTIONS:
        assert flask_option not in options
    assert invoke("openapi").exit_code == 2  # "No such command"


def test_version_names_pointbridge_and_every_plugin(instance: Path) -> None:
    shown = invoke("--version")
    assert shown.exit_code == 0
    lines = shown.output.splitlines()
    assert lines[0] == f"pointbridge {version('pointbridge')}"
    for plugin in PluginHost().describe():
        assert f"  plugin {plugin['name']}: {plugin['package']} {plugin['version']}" in lines
    assert "Flask" not in shown.output and "Werkzeug" not in shown.output


@pytest.mark.parametrize(
    "args",
    [("integrations", "list"), ("tokens", "list"), ("outbox", "status"), ("tokens", "create")],
    ids=" ".join,
)
def test_a_database_without_tables_gives_the_one_line_hint(
    instance: Path, args: tuple[str, ...]
) -> None:
    instance.mkdir()
    sqlite3.connect(instance / "pointbridge.sqlite3").close()
    result = invoke(*args)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: The database has no pointbridge tables, or older ones: run "
        "`pointbridge db upgrade`."
    ]


def test_info_says_where_the_database_key_and_config_are(instance: Path) -> None:
    shown = invoke("info")
    assert shown.exit_code == 0, shown.output
    assert f"instance:  {instance}" in shown.output
    assert f"database:  sqlite:///{instance / 'pointbridge.sqlite3'}" in shown.output
    assert f"key:       {instance / 'secret.key'} (not generated yet)" in shown.output
    assert "config:    none" in shown.output
    assert not instance.exists(), "info only looks"
