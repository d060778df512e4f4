"""A change made while an export runs always ends on the platform: the export never sends a
copy older than what live delivery already sent, and live delivery never sends before an
export page that holds an older copy of the same customer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from pointbridge.delivery.export_pages import ExportRound, Page
from pointbridge.delivery.exports import Exporter, Progress, queue_export
from pointbridge.services import Services
from pointbridge.storage.models import Customer

CUSTOMERS = 100_000


def _last_sent(out: Path) -> dict[str, int]:
    points: dict[str, int] = {}
    for line in map(json.loads, out.read_text().splitlines()):
        if line["kind"] == "contact":
            points[line["email"]] = line["points"]
    return points


def test_credits_made_around_an_export_page_read_end_on_the_platform(
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

    # The shop keeps selling: one +500 credit is committed just before the export reads its
    # page, another just after (the page then carries the older balance, the outbox the newer).
    next_page = ExportRound.next_page
    orders: list[int] = []

    def sell() -> None:
        with services.db.transaction() as session:
            customer = services.loyalty.get(session, jana.id)
            orders.append(services.loyalty.post_transaction(session, customer, 500, "order")[0].id)

    def shop_sells_around_the_read(self: ExportRound, *args: Any) -> Page | None:
        if not orders:
            sell()
        page = next_page(self, *args)
        if page is not None and len(orders) == 1:
            sell()
        return page

    monkeypatch.setattr(ExportRound, "next_page", shop_sells_around_the_read)
    Exporter(services.db, services.integrations, services.outbox, owner="t").run(job.id)
    services.worker().drain()

    with services.db.read() as session:
        balance = session.get(Customer, jana.id).balance
    assert len(orders) == 2 and balance == 1100
    assert _last_sent(out) == {"jana@example.com": 1100}


def test_a_credit_during_a_100000_customer_export_goes_out_within_a_few_calls(
    services: Services, tmp_path: Path
) -> None:
    out = tmp_path / "platform.jsonl"
    with services.db.transaction() as session:
        row = services.integrations.add(session, "dd", "jsonl", {"path": str(out)})
        session.execute(
            insert(Customer),
            [
                {"email": f"c{n}@example.com", "referral_code": f"R{n:06d}", "balance": 0}
                for n in range(CUSTOMERS)
            ],
        )
        last_id = session.scalar(select(func.max(Customer.id)))
    last = f"c{CUSTOMERS - 1}@example.com"
    services.integrations.install(services.db, "dd")
    job = queue_export(services.db, row.id)
    page = services.host.platform("jsonl").max_batch
    lines_at_credit: list[int] = []

    def credit_the_last_customer_early(progress: Progress) -> None:
        if progress.done >= 10 * page and not lines_at_credit:
            with services.db.transaction() as session:
                customer = services.loyalty.get(session, last_id)
                services.loyalty.post_transaction(session, customer, 500, "order")
            lines_at_credit.append(len(out.read_text().splitlines()))

    exporter = Exporter(services.db, services.integrations, services.outbox, owner="t")
    finished = exporter.run(job.id, on_progress=credit_the_last_customer_early)

    assert finished.status == "finished" and finished.done == CUSTOMERS
    sent = [json.loads(line) for line in out.read_text().splitlines()]
    credited = [
        n for n, line in enumerate(sent) if line["kind"] == "contact" and line["email"] == last
    ]
    # The live change went out before the export reached the customer, at most a couple of
    # calls after it was made (pages already read or at the platform go first), not after
    # the other ~88,000 customers.
    (at_credit,) = lines_at_credit
    assert len(credited) == 2  # the live credit, then the export's own page
    assert [sent[n]["points"] for n in credited] == [500, 500]
    assert credited[0] - at_credit <= 3 * page
    assert credited[1] > credited[0] + 80_000
