"""``pointbridge export``: killed half-way it resumes where it stopped and sends everyone, in
memory that does not grow with the number of customers."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import time_machine
from sqlalchemy import select

from pointbridge.delivery.exports import Exporter, latest_export, queue_export
from pointbridge.delivery.holds import pause
from pointbridge.storage.models import Customer, ExportJob, ExportStatus
from pointbridge.testing import FakeServer
from pointbridge.testing.e2e import Pointbridge

FIRST = 10_000
TOTAL = 50_000


def _run(kit: Any, pb: Pointbridge, tmp_path: Path, *args: str) -> tuple[int, float, str]:
    """``pointbridge export ...`` to its end: exit code, peak RSS in MB, output."""
    log = tmp_path / f"export-{len(list(tmp_path.glob('export-*')))}.log"
    process = kit.spawn(["export", *args], kit.subprocess_env(pb), log)
    peak = _watch(process, lambda: process.poll() is not None)
    return process.wait(), peak, log.read_text()


def _watch(process: subprocess.Popen[bytes], done: Callable[[], Any]) -> float:
    """The process's peak RSS in MB (its VmHWM) as last seen before ``done()``.

    Not ``wait4``'s ru_maxrss: that counts the pages of this test process that the child
    had before it exec'd, and this process grows with the fake platform's contacts.
    """
    status = Path(f"/proc/{process.pid}/status")
    peak = 0.0
    while not done():
        with contextlib.suppress(OSError):
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        time.sleep(0.02)
    return peak


def _check_platform(kit: Any, pb: Pointbridge, fake: Any, count: int) -> None:
    """The platform holds exactly ``count`` contacts, each as the database has it."""
    contacts = fake.account("shop").contacts
    assert len(contacts) == count
    with pb.services.db.transaction() as session:
        ids = list(session.scalars(select(Customer.id).order_by(Customer.id)))
    for start in range(0, len(ids), 5_000):
        expected = kit.expected_fields(pb, ids[start : start + 5_000])
        wrong = [email for email, fields in expected.items() if contacts.get(email) != fields]
        assert not wrong, f"{len(wrong)} contacts differ, e.g. {wrong[:3]}"


def test_a_killed_export_resumes_and_sends_everyone_in_flat_memory(
    tmp_path: Path, pb: Pointbridge, fake: Any, kit: Any
) -> None:
    with FakeServer(kit.fakeesp.create_app(fake)) as server:
        kit.add_integration(pb, "shop", server, platform="fakeesp", timeout=30)
        shop_id = pb.integration("shop").id

        pb.seed_customers(FIRST)
        code, small_rss, output = _run(kit, pb, tmp_path, "shop")
        assert code == 0, output
        assert f"finished: {FIRST} customers sent, 0 refused" in output
        _check_platform(kit, pb, fake, FIRST)

        # Five times the customers, exported again from the start, killed half-way.
        pb.seed_customers(TOTAL - FIRST, start=FIRST)
        log = tmp_path / "export-killed.log"
        process = kit.spawn(["export", "shop", "--restart"], kit.subprocess_env(pb), log)
        half_way: list[ExportJob] = []

        def passed_half_way() -> bool:
            job = latest_export(pb.services.db, shop_id)
            if job is not None and job.status == ExportStatus.RUNNING and job.cursor > TOTAL // 2:
                half_way.append(job)
            assert process.poll() is None, "the export ended before it was killed"
            return bool(half_way)

        killed_rss = _watch(process, passed_half_way)
        os.kill(process.pid, signal.SIGKILL)
        code = process.wait()
        (job,) = half_way
        assert code == -signal.SIGKILL
        stopped = latest_export(pb.services.db, shop_id)
        assert stopped is not None and stopped.id == job.id
        assert stopped.status == ExportStatus.RUNNING
        assert TOTAL // 2 <= stopped.done < TOTAL

        code, resumed_rss, output = _run(kit, pb, tmp_path, "shop")
        assert code == 0, output
        assert f"resuming export {job.id} after {stopped.done} customers" in output
        assert re.search(rf"export {job.id} finished: {TOTAL} customers sent, 0 refused", output)
        _check_platform(kit, pb, fake, TOTAL)

    # Each of the two runs over the 50,000 handled more than twice the 10,000 of the first;
    # memory that grew with the customers would show it (generous slack: 15 %).
    assert killed_rss < small_rss * 1.15, (small_rss, killed_rss)
    assert resumed_rss < small_rss * 1.15, (small_rss, resumed_rss)


class _ClockStop(threading.Event):
    """A stop event that records how long the exporter waits and moves the clock on by as
    much instead of waiting."""

    def __init__(self, clock: Any) -> None:
        super().__init__()
        self.clock = clock
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None
        self.waits.append(round(timeout, 3))
        self.clock.shift(timedelta(seconds=timeout))
        return False


def _export(pb: Pointbridge, stop: threading.Event) -> Any:
    job = queue_export(pb.services.db, pb.integration("shop").id)
    services = pb.services
    exporter = Exporter(services.db, services.integrations, services.outbox, owner="t")
    return exporter.run(job.id, stop=stop)


def test_an_export_told_to_slow_down_waits_as_long_as_retry_after_says_and_so_does_delivery(
    pb: Pointbridge, fake: Any, fake_server: FakeServer, kit: Any
) -> None:
    kit.add_integration(pb, "shop", fake_server, platform="fakeesp")
    pb.seed_customers(3)
    fake.fail_next = [
        kit.fakeesp.Planned(429, {"Retry-After": "0"}),
        kit.fakeesp.Planned(429, {"Retry-After": "7"}),
    ]
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        stop = _ClockStop(clock)
        paused_from = datetime.now(UTC)
        progress = _export(pb, stop)
        # The pause is the integration's: live delivery in every worker keeps to it too.
        resume_at = pb.integration("shop").resume_at

    assert progress.status == ExportStatus.FINISHED
    assert stop.waits == [7.0], "Retry-After: 0 means now, not the 30 s default"
    assert resume_at == paused_from + timedelta(seconds=7)
    _check_platform(kit, pb, fake, 3)


def test_an_export_waits_for_a_pause_that_live_delivery_was_told_to_take(
    pb: Pointbridge, fake: Any, fake_server: FakeServer, kit: Any
) -> None:
    kit.add_integration(pb, "shop", fake_server, platform="fakeesp")
    pb.seed_customers(3)
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        pause(pb.services.db, pb.integration("shop"), 12.0)  # as the worker does on a 429
        stop = _ClockStop(clock)
        progress = _export(pb, stop)

    assert progress.status == ExportStatus.FINISHED
    assert stop.waits == [12.0]
    assert fake.calls == 2  # the install's check of the fields, then one push after the pause
    _check_platform(kit, pb, fake, 3)
