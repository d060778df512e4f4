"""A change made while an export runs always ends on the platform: the export never sends a
copy older than what live delivery already sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pointbridge.export import Exporter, queue_export
from pointbridge.models import Customer
from pointbridge.services import Services


def _last_sent(out: Path) -> dict[str, int]:
    points: dict[str, int] = {}
    for line in map(json.loads, out.read_text().splitlines()):
        if line["kind"] == "contact":
            points[line["email"]] = line["points"]
    return points


def test_a_credit_delivered_live_while_the_export_waits_its_turn_is_not_overwritten(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "platform.jsonl"
    with services.db.transaction() as session:
        row = services.integrations.add(session, "dd", "jsonl", {"path": str(out)})
        jana = services.loyalty.create_customer(session, {"email": "jana@example.com"})
        services.loyalty.post_transaction(session, jana, 100, "order")
    services.integrations.install(services.db, "dd")
    services.worker().drain()
    job = queue_export(services.db, row.id)

    # The shop keeps selling: while the export waits for its turn to send, a +500 credit is
    # committed and live delivery sends it.
    hold = Exporter._hold_integration
    orders: list[int] = []

    def shop_sells_then_hold(self: Exporter, *args: Any) -> None:
        if not orders:
            with services.db.transaction() as session:
                customer = services.loyalty.get(session, jana.id)
                orders.append(
                    services.loyalty.post_transaction(session, customer, 500, "order")[0].id
                )
            services.worker().drain()
        hold(self, *args)

    monkeypatch.setattr(Exporter, "_hold_integration", shop_sells_then_hold)
    Exporter(services.db, services.integrations, services.outbox, owner="t").run(job.id)
    services.worker().drain()

    with services.db.read() as session:
        balance = session.get(Customer, jana.id).balance
    assert orders and balance == 600
    assert _last_sent(out) == {"jana@example.com": 600}
