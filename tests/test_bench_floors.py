"""Smoke run of ``bench/floors.py``: one platform, 500 customers, SQLite; the JSON it writes
holds every figure the README's table is made of."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_a_quick_run_writes_every_figure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Imported by its name: the fake's and the export's processes import it again.
    monkeypatch.syspath_prepend(str(ROOT))
    floors = importlib.import_module("bench.floors")
    output = tmp_path / "floors.json"

    floors.main(["--customers", "500", "--platform", "smartemailing", "--output", str(output)])

    written = json.loads(output.read_text())
    assert written["database"] == "sqlite" and written["cpu_reference_seconds"] > 0
    figures = written["platforms"]["smartemailing"]
    assert figures["status"] == "finished"
    assert figures["done"] == figures["arrived"] == 500
    assert figures["floor_per_second"] == 2500 and figures["binds"] == "rate limit"
    assert "500 x 5/1 s" in figures["formula"]
    for name in ("contacts_per_second", "ratio", "cpu_us_per_contact", "peak_rss_mb"):
        assert figures[name] > 0
    assert figures["throttled_429"] >= 0
