"""Commands that only look write nothing: no key file, no database file in the current folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pointbridge.web.cli import cli

READS_NOTHING = [["plugins"], ["plugins", "--json"], ["--help"]]
READS_THE_DATABASE = [
    ["integrations", "list"],
    ["integrations", "show", "shop"],
    ["outbox", "status"],
    ["outbox", "dead"],
    ["ledger", "verify"],
    ["export", "shop", "--status"],
    ["tokens", "list"],
]


@pytest.fixture
def bare_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A current folder with nothing configured: the instance is the user's data folder,
    here inside it (XDG_DATA_HOME)."""
    for name in (
        "POINTBRIDGE_SECRET_KEY",
        "POINTBRIDGE_DATABASE_URL",
        "POINTBRIDGE_CONFIG",
        "POINTBRIDGE_INSTANCE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def files_in(folder: Path) -> list[str]:
    """Every file and folder, leaving out the journals SQLite keeps beside a database it opens."""
    return sorted(
        str(path.relative_to(folder))
        for path in folder.rglob("*")
        if not path.name.endswith(("-wal", "-shm"))
    )


def invoke(args: list[str]) -> Result:
    return CliRunner().invoke(cli, args)


@pytest.mark.parametrize("args", READS_NOTHING, ids=" ".join)
def test_commands_that_need_no_database_write_nothing(bare_folder: Path, args: list[str]) -> None:
    result = invoke(args)

    assert result.exit_code == 0, result.output
    assert files_in(bare_folder) == []


@pytest.mark.parametrize("args", READS_THE_DATABASE, ids=" ".join)
def test_reading_a_database_that_is_not_there_says_so_and_creates_none(
    bare_folder: Path, args: list[str]
) -> None:
    result = invoke(args)

    assert result.exit_code == 1
    database = bare_folder / "data" / "pointbridge" / "pointbridge.sqlite3"
    assert f"There is no database at {database} yet" in result.output
    assert "pointbridge db upgrade" in result.output
    assert files_in(bare_folder) == []


@pytest.mark.parametrize("args", READS_THE_DATABASE, ids=" ".join)
def test_reading_a_database_generates_no_key(
    bare_folder: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    monkeypatch.setenv("POINTBRIDGE_SECRET_KEY", "the-key-it-was-set-up-with")
    assert invoke(["db", "upgrade"]).exit_code == 0
    monkeypatch.delenv("POINTBRIDGE_SECRET_KEY")
    before = files_in(bare_folder)

    invoke(args)

    assert files_in(bare_folder) == before
    assert not (bare_folder / "data" / "pointbridge" / "secret.key").exists()
