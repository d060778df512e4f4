"""`pointbridge customers import`: streamed, idempotent, bad lines reported and skipped."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from pointbridge.models import Customer, LedgerEntry
from pointbridge.secrets import KEY_FILE, SecretBox, load_key
from pointbridge.web.cli import cli

CSV = """email,first_name,registered,tier_name,missions,points,expires_at
Jana@Example.com,Jana,yes,Gold,2,120,2999-12-31
petr@example.com,Petr,0,,,0,
not-an-email,Bad,,,,,
eva@example.com,Eva,1,,x,,
"""


def test_import_creates_updates_and_reports_bad_lines(app, services, tmp_path: Path) -> None:
    source = tmp_path / "customers.csv"
    source.write_text(CSV)
    runner = app.test_cli_runner()

    first = runner.invoke(cli, ["customers", "import", str(source)])
    assert first.exit_code == 0, first.output
    assert "created 2, updated 0, skipped 2" in first.output
    assert "line 4" in first.output and "line 5" in first.output

    second = runner.invoke(cli, ["customers", "import", str(source)])
    assert "created 0, updated 2, skipped 2" in second.output

    with services.db.transaction() as session:
        jana = session.scalar(select(Customer).where(Customer.email == "jana@example.com"))
        assert (jana.first_name, jana.registered, jana.tier_name, jana.missions) == (
            "Jana",
            True,
            "Gold",
            2,
        )
        assert jana.balance == 120  # the opening balance was credited once, not twice
        assert session.scalar(select(func.count(LedgerEntry.id))) == 1


def test_a_file_without_an_email_column_is_refused(app, tmp_path: Path) -> None:
    source = tmp_path / "customers.csv"
    source.write_text("mail,name\na@b.cz,A\n")
    result = app.test_cli_runner().invoke(cli, ["customers", "import", str(source)])
    assert result.exit_code == 1 and "'email' column" in result.output


def test_without_a_configured_key_one_is_generated_once_and_reused(tmp_path: Path, caplog) -> None:
    key = load_key(None, tmp_path)
    assert (tmp_path / KEY_FILE).exists() and "POINTBRIDGE_SECRET_KEY is not set" in caplog.text
    token = SecretBox(key).encrypt("api-key")
    assert SecretBox(load_key(None, tmp_path)).decrypt(token) == "api-key"
