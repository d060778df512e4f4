"""Smoke run of ``bench/expiry.py`` with 300 customers on SQLite and on PostgreSQL: both nights
run, do what the generated data calls for (the script exits otherwise) and are reported."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent


def test_a_quick_run_reports_both_nights(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    expiry = importlib.import_module("bench.expiry")
    argv = ["--customers", "300"]
    if database_url.startswith("postgresql"):
        # A database of its own on the same server: the script creates and drops it.
        own = make_url(database_url).set(database=make_url(database_url).database + "_bench")
        argv += ["--database-url", own.render_as_string(hide_password=False)]

    expiry.main(argv)

    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    nights = {row[2]: row for row in rows if len(row) > 3 and row[0] == "300"}
    assert set(nights) == {"first", "steady"}
    assert all(int(row[3].replace(",", "")) > 0 for row in nights.values())  # customers expired
    assert any(row[:2] == ["first", "night:"] for row in rows)
