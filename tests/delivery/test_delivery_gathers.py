"""A worker woken by a change gives the next changes a moment to join it: a round costs about
as much as the rows it carries, so under a steady stream one change a round was the cost."""

from __future__ import annotations

import threading
from typing import Any

from pointbridge.delivery.worker import Worker
from pointbridge.testing import FakeServer
from pointbridge.testing.e2e import Pointbridge

GATHER = 0.25


class HeldGathering(threading.Event):
    """A worker's ``stop`` whose gathering waits last until the test lets them end, so the
    test decides what arrives meanwhile, however fast or slow the machine is."""

    def __init__(self) -> None:
        super().__init__()
        self.gathering = threading.Semaphore(0)
        self.go_on = threading.Semaphore(0)

    def wait(self, timeout: float | None = None) -> bool:
        if timeout == GATHER and not self.is_set():
            self.gathering.release()
            self.go_on.acquire()
            return self.is_set()
        return super().wait(timeout)


class SeenWaiting(threading.Event):
    """A worker's ``wakeup`` that tells when the worker first waits on it: idle, with nothing
    claimed, so the test's first change cannot be taken by a round already running."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        self.waiting.set()
        return super().wait(timeout)


def test_changes_made_while_a_woken_worker_gathers_go_out_in_one_call(
    pb: Pointbridge, fake: Any, kit: Any
) -> None:
    with FakeServer(kit.fakeesp.create_app(fake)) as server:
        kit.add_integration(pb, "shop", server)
        loyalty = pb.services.loyalty
        stop = HeldGathering()
        wakeup = pb.services.outbox.wakeup = SeenWaiting()  # commits wake the worker by it
        worker = Worker(pb.services.db, pb.services.integrations, gather_seconds=GATHER)
        thread = threading.Thread(
            target=worker.run_forever, args=(stop, wakeup), kwargs={"idle": 60}
        )
        thread.start()
        try:
            assert wakeup.waiting.wait(30), "the worker did not go idle"
            calls_before = fake.calls
            with pb.services.db.transaction() as session:  # wakes the worker as it commits
                loyalty.create_customer(session, {"email": "first@example.com"})
            assert stop.gathering.acquire(timeout=30), "the woken worker did not gather"
            for name in ("second", "third"):
                with pb.services.db.transaction() as session:
                    loyalty.create_customer(session, {"email": f"{name}@example.com"})
            stop.go_on.release()
            # The round found three rows, fewer than a backlog: it gathers again.
            assert stop.gathering.acquire(timeout=30), "the worker did not gather after it"
            assert pb.pending() == 0
            assert fake.calls - calls_before == 1
            assert {"first@example.com", "second@example.com", "third@example.com"} <= set(
                fake.account("shop").contacts
            )
        finally:
            stop.set()
            stop.go_on.release()
            thread.join(30)
