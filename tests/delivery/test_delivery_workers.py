"""Four ``pointbridge worker`` processes on one PostgreSQL database: they share the work,
send nothing twice while they live, and when one is killed mid-call its rows go out again."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from pointbridge.plugins import PluginHost
from pointbridge.storage.models import Customer, OutboxStatus
from pointbridge.testing import FakeServer
from pointbridge.testing.databases import truncate_all
from pointbridge.testing.e2e import Pointbridge

INTEGRATIONS = 8
CUSTOMERS = 2_500  # x 8 integrations = 20,000 outbox rows a round
WORKERS = 4


@pytest.fixture
def pb_postgres(
    tmp_path: Path, postgres_url: str, fakeesp_host: PluginHost
) -> Iterator[Pointbridge]:
    truncate_all(postgres_url)
    with Pointbridge(tmp_path, database_url=postgres_url, host=fakeesp_host) as running:
        yield running


def _stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def _change_everyone(pb: Pointbridge, ids: list[int], points: int) -> None:
    """Every customer gains ``points``; one contact row per customer and integration."""
    with pb.services.db.transaction() as session:
        session.execute(
            update(Customer)
            .values(balance=Customer.balance + points, last_change_points=points)
            .execution_options(synchronize_session=False)
        )
        pb.services.outbox.contacts_changed(session, ids)


def test_four_workers_share_the_work_and_a_killed_workers_rows_go_out_again(
    tmp_path: Path, pb_postgres: Pointbridge, fake: Any, kit: Any
) -> None:
    pb = pb_postgres
    # Calls that take a while keep every worker busy, so the work is shared.
    fake.latency = 0.05
    with FakeServer(kit.fakeesp.create_app(fake)) as server:
        accounts = [f"shop{n}" for n in range(INTEGRATIONS)]
        for name in accounts:
            kit.add_integration(pb, name, server, platform="fakeesp", timeout=30)
        pb.seed_customers(CUSTOMERS)
        with pb.services.db.transaction() as session:
            ids = list(session.scalars(select(Customer.id).order_by(Customer.id)))
        env = kit.subprocess_env(pb)
        logs = [tmp_path / f"worker{n}.log" for n in range(WORKERS)]
        workers = [kit.spawn(["worker", "--idle", "0.2", "--lease", "3"], env, log) for log in logs]
        try:
            kit.wait_for(
                lambda: all("worker delivering" in log.read_text() for log in logs),
                60,
                "the workers to start",
            )

            # 1. 20,000 rows, four live workers: each delivered once, the work shared.
            _change_everyone(pb, ids, 10)
            assert pb.pending() == CUSTOMERS * INTEGRATIONS
            kit.wait_for(lambda: pb.pending() == 0, 90, "the workers to drain 20,000 rows")
            expected = kit.expected_fields(pb, ids)
            senders: set[str] = set()
            for name in accounts:
                account = fake.account(name)
                assert account.contacts == expected, name
                twice = [email for email, count in account.sends.items() if count != 1]
                assert not twice, f"{name}: {len(twice)} contacts sent twice, e.g. {twice[:3]}"
                senders |= {arrival.sender for arrival in account.arrivals}
            assert senders <= {str(worker.pid) for worker in workers}
            assert len(senders) > 1, "one worker did all the work"

            # 2. Kill -9 one worker while its call is at the platform.
            hold = fake.hold = kit.fakeesp.Hold()
            _change_everyone(pb, ids, 5)
            assert hold.arrived.wait(60), "no worker sent the second round"
            (victim,) = [w for w in workers if str(w.pid) == hold.sender]
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait(10)
            hold.release.set()  # the platform never applied the held call
            kit.wait_for(lambda: pb.pending() == 0, 90, "the other workers to take over")

            expected = kit.expected_fields(pb, ids)
            for name in accounts:
                assert fake.account(name).contacts == expected, name
            resent = [
                arrival
                for arrival in fake.account(hold.account).arrivals
                if arrival.email in set(hold.emails) and arrival.values["credit_num"] == 25
            ]
            assert {arrival.email for arrival in resent} == set(hold.emails)
            assert str(victim.pid) not in {arrival.sender for arrival in resent}
            assert pb.dead() == 0
            assert {row.status for row in kit.outbox_rows(pb)} == {OutboxStatus.DELIVERED}
            assert sum(worker.poll() is None for worker in workers) == WORKERS - 1
        finally:
            fake.hold = None
            _stop(workers)


def test_a_standalone_worker_sends_as_soon_as_another_process_commits_a_change(
    tmp_path: Path, pb_postgres: Pointbridge, fake: Any, fake_server: FakeServer, kit: Any
) -> None:
    pb = pb_postgres
    kit.add_integration(pb, "shop", fake_server)

    def create(email: str) -> None:
        with pb.services.db.transaction() as session:
            pb.services.loyalty.create_customer(session, {"email": email})

    create("before@example.com")
    log = tmp_path / "worker.log"
    # Polling once a minute: only PostgreSQL's NOTIFY can make it send sooner.
    worker = kit.spawn(["worker", "--idle", "60"], kit.subprocess_env(pb), log)
    try:
        contacts = fake.account("shop").contacts
        kit.wait_for(lambda: "before@example.com" in contacts, 30, "the worker's first round")
        time.sleep(1)  # the worker has gone back to sleep

        create("after@example.com")
        kit.wait_for(lambda: "after@example.com" in contacts, 10, "the change to be sent")
    finally:
        _stop([worker])
    assert "worker delivering" in log.read_text()
