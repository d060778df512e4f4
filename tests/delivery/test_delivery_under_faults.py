"""20,000 changes delivered while the platform fails 30 % of its calls in every way it can."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, update

from pointbridge.contract.events import EventType
from pointbridge.delivery.worker import Backoff, Worker
from pointbridge.plugins import PluginHost
from pointbridge.storage.models import Customer, OutboxKind, OutboxStatus
from pointbridge.testing import FakeServer, Faults
from pointbridge.testing.e2e import Pointbridge
from pointbridge.testing.server import FAULT_KINDS

CUSTOMERS = 2_000
CHANGES = 20_000
PER_TRANSACTION = 500


def _make_changes(pb: Pointbridge, ids: list[int]) -> int:
    """CHANGES changes of random customers, a quarter of them credits with their event;
    returns how many credits. Written in bulk (as an import would) rather than through the
    loyalty service, whose ORM path would make the writer, not delivery, the test's cost."""
    rng = random.Random(1)
    table = Customer.__table__
    credits = 0
    for _ in range(CHANGES // PER_TRANSACTION):
        changed = [rng.choice(ids) for _ in range(PER_TRANSACTION)]
        credited = [(c, rng.randint(1, 50)) for c in changed if rng.random() < 0.25]
        credits += len(credited)
        with pb.services.db.transaction() as session:
            session.execute(
                update(table).where(table.c.id == bindparam("cid")).values(missions=bindparam("m")),
                [{"cid": c, "m": rng.randint(0, 10**6)} for c in changed],
            )
            for customer_id, points in credited:
                session.execute(
                    update(table)
                    .where(table.c.id == customer_id)
                    .values(balance=table.c.balance + points, last_change_points=points)
                )
            pb.services.outbox.contacts_changed(session, changed)
            pb.services.outbox.events(
                session,
                EventType.CREDIT_CHANGED,
                [(c, {"points": p, "reason": "order"}) for c, p in credited],
            )
        # Changes arrive over time, not in one burst: the worker sends between them.
        time.sleep(0.05)
    return credits


def test_every_customer_ends_up_as_in_the_database_although_30_percent_of_calls_fail(
    tmp_path: Path, fakeesp_host: PluginHost, fake: Any, kit: Any
) -> None:
    faults = Faults(rate=0.0, slow_seconds=0.6, retry_after=0.1, seed=20_000)
    with (
        FakeServer(kit.fakeesp.create_app(fake), faults=faults) as server,
        Pointbridge(tmp_path, host=fakeesp_host, max_attempts=12) as pb,
    ):
        # Client timeout 0.3 s: the "slow" fault answers after 0.6 s, having applied the
        # request all the same, as a real server does when the client gave up.
        kit.add_integration(pb, "shop", server, timeout=0.3)
        loyalty = pb.services.loyalty
        with pb.services.db.transaction() as session:
            ids = [
                loyalty.create_customer(session, {"email": f"c{n}@example.com"}).id
                for n in range(CUSTOMERS)
            ]
        drawn: Counter[str | None] = Counter()  # what each request got: a fault kind or None
        draw = faults.draw

        def counted() -> str | None:
            kind = draw()
            drawn[kind] += 1
            return kind

        faults.draw = counted  # type: ignore[method-assign]
        faults.rate = 0.3

        stop = threading.Event()
        worker = Worker(
            pb.services.db,
            pb.services.integrations,
            max_attempts=12,
            backoff=Backoff(base=0.05, cap=0.5),
        )
        thread = threading.Thread(
            target=worker.run_forever,
            args=(stop, pb.services.outbox.wakeup),
            kwargs={"idle": 0.05},
        )
        thread.start()
        try:
            credits = _make_changes(pb, ids)
            kit.wait_for(lambda: pb.pending() == 0, 120, "the worker to drain the outbox")
        finally:
            stop.set()
            pb.services.outbox.wake()
            thread.join()
        # Requests the client gave up on may still be running on the server.
        time.sleep(faults.slow_seconds + 0.2)

        shop = fake.account("shop")
        expected = kit.expected_fields(pb, ids)
        wrong = {email for email in expected if shop.contacts.get(email) != expected[email]}
        assert not wrong, f"{len(wrong)} customers differ, e.g. {sorted(wrong)[:3]}"
        assert pb.dead() == 0
        events = kit.outbox_rows(pb, kind=OutboxKind.EVENT)
        assert len(events) == credits
        assert {row.status for row in kit.outbox_rows(pb)} == {OutboxStatus.DELIVERED}
        assert {row.id for row in events} <= set(shop.events)
        assert set(FAULT_KINDS) <= set(drawn), f"every fault kind was injected: {drawn}"
        assert 0.2 < sum(drawn[kind] for kind in FAULT_KINDS) / drawn.total() < 0.4
