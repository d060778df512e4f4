"""``[pointbridge] timezone``: the shop's clock for the dates platforms receive."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine

from pointbridge.settings import ConfigError, Settings
from pointbridge.testing.e2e import Pointbridge


def _settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table: str) -> Settings:
    config = tmp_path / "pointbridge.toml"
    config.write_text(f"[pointbridge]\n{table}\n", encoding="utf-8")
    monkeypatch.setenv("POINTBRIDGE_CONFIG", str(config))
    return Settings.from_env()


def test_the_shop_timezone_defaults_to_the_expiry_jobs_and_can_be_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _settings(tmp_path, monkeypatch, "").shop_timezone == ZoneInfo("Europe/Prague")
    following = _settings(tmp_path, monkeypatch, 'expiry_timezone = "Europe/London"')
    assert following.shop_timezone == ZoneInfo("Europe/London")
    own = _settings(tmp_path, monkeypatch, 'timezone = "America/New_York"')
    assert own.shop_timezone == ZoneInfo("America/New_York")


def test_a_zone_that_does_not_exist_is_refused_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match=r"timezone = 'Europe/Praha' is no IANA time zone"):
        _settings(tmp_path, monkeypatch, 'timezone = "Europe/Praha"')


def test_the_dry_run_file_dates_a_change_by_the_shops_clock(
    tmp_path: Path, database_url: str
) -> None:
    out = tmp_path / "dry-run.jsonl"
    with Pointbridge(tmp_path, database_url=database_url) as pb:
        pb.add_integration("dry-run", "jsonl", {"path": str(out)})
        # 00:30 on 2 March in Prague, still 1 March in UTC.
        with time_machine.travel(datetime(2026, 3, 1, 23, 30, tzinfo=UTC), tick=False):
            customer = pb.create_customer("jana@example.com")
            pb.transaction(customer["id"], 120, "order")
        pb.deliver()
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    contact = [line for line in lines if line["kind"] == "contact"][-1]
    assert contact["last_change_at"] == "2026-03-02T00:30:00+01:00"
