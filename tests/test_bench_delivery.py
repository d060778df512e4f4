"""``bench/delivery.py``: each platform's bodies read back as changes, and a smoke run of both
parts with a tiny load on SQLite (a real ``pointbridge run`` against SmartEmailing's fake)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> Path:
    # Imported by their names: the fakes' processes import them again.
    monkeypatch.syspath_prepend(str(ROOT))
    return ROOT


def _body(payload: object) -> str:
    return json.dumps(payload)


def test_every_platforms_bodies_read_back_as_balances(bench: Path) -> None:
    arrivals = importlib.import_module("bench.changes")
    base = arrivals.BASE
    recorded = [
        # Ecomail: subscribe-bulk (typed fields), then a tracker event (value is JSON text)
        (
            1.0,
            "POST",
            "/lists/1/subscribe-bulk",
            _body(
                {
                    "subscriber_data": [
                        {"email": "a@x.cz", "custom_fields": {"c": {"value": base + 2}}},
                        {"email": "b@x.cz", "custom_fields": {"c": {"value": base + 7}}},
                    ]
                }
            ),
        ),
        (
            2.0,
            "POST",
            "/tracker/events",
            _body({"event": {"email": "a@x.cz", "value": json.dumps({"balance": base + 2})}}),
        ),
        # SmartEmailing: custom fields as text; Dotdigital: identifiers; Splio: the path
        (3.0, "POST", "/import", _body({"data": [{"emailaddress": "c@x.cz", "v": str(base + 1)}]})),
        (
            4.0,
            "POST",
            "/contacts/v3/import",
            _body([{"identifiers": {"email": "d@x.cz"}, "dataFields": {"N": base + 3}}]),
        ),
        (
            5.0,
            "PATCH",
            "/data/contacts/e%40x.cz",
            _body({"custom_fields": [{"id": 3, "value": str(base + 4)}]}),
        ),
        (6.0, "POST", "/lists/1/subscribe-bulk", _body({"subscriber_data": [{"email": "a@x.cz"}]})),
        # Splio's interactions carry no balance: a customer's come in the order of its changes
        (7.0, "POST", "/events/", _body({"event": "x", "individual_id": "e@x.cz"})),
        (8.0, "POST", "/events/", _body({"event": "x", "individual_id": "e@x.cz"})),
    ]

    read = arrivals.Arrivals.read(recorded)

    assert read.contact_wait("a@x.cz", base + 1, 0.5) == 0.5  # a later balance carries it
    assert read.contact_wait("a@x.cz", base + 3, 0.5) is None  # never arrived
    assert read.contact_wait("b@x.cz", base + 7, 0.0) == 1.0
    changes = [("a@x.cz", base + 2, 1.5), ("b@x.cz", base + 7, 0.0)]
    # b's update came as a contact update only: it is no event
    assert read.event_waits(changes) == [0.5, None]
    splio = [("e@x.cz", base + 5, 5.5), ("e@x.cz", base + 4, 4.5), ("e@x.cz", base + 6, 6.0)]
    assert read.event_waits(splio) == [2.5, 2.5, None]
    assert read.contact_wait("c@x.cz", base + 1, 2.0) == 1.0
    assert read.contact_wait("d@x.cz", base + 3, 2.0) == 2.0
    assert read.contact_wait("e@x.cz", base + 4, 2.0) == 3.0
    # The last push carries no change of ours (no balance): it is not counted.
    assert read.requests == {"contact": 4, "event": 3}


def test_a_quick_run_prints_every_figure(bench: Path, capsys: pytest.CaptureFixture[str]) -> None:
    delivery = importlib.import_module("bench.delivery")
    argv = ["--platform", "smartemailing", "--customers", "20", "--rate", "10", "--seconds", "2"]

    figures = delivery.main([*argv, "--contacts", "600", "--repeat", "1", "--workers", "1"])

    found = figures["latency"]["smartemailing"]
    assert found["changes"] == 20 and found["non_2xx"] == {}
    assert found["contacts_missing"] == found["events_missing"] == found["dead_letters"] == 0
    assert found["contact_p99_ms"] is not None and found["event_p99_ms"] is not None
    assert found["ceiling_per_second"] == 1250
    assert (
        "5 requests/1 s / (1/500 request per contact update + 1/500 request per event)"
        in (found["formula"])
    )
    assert figures["throughput"]["contacts"] == 600
    assert figures["throughput"]["ceiling_per_second"] == 50_000
    assert figures["cpu_reference_seconds"] > 0
    printed = capsys.readouterr().out
    assert "smartemailing: offered 10.0/s" in printed and "ceiling 1,250.0/s" in printed
    assert "throughput: 600 contacts" in printed and "CPU reference" in printed
