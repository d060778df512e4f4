"""Workers run queued exports by themselves, and finish those whose process died."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from pointbridge.delivery.exports import queue_export
from pointbridge.services import Services
from pointbridge.storage.models import Customer, ExportJob, ExportStatus, IntegrationRow


def _setup(services: Services, tmp_path: Path, customers: int) -> tuple[int, Path]:
    out = tmp_path / "out.jsonl"
    with services.db.transaction() as session:
        row = services.integrations.add(session, "dry", "jsonl", {"path": str(out)})
        for n in range(customers):
            session.add(Customer(email=f"c{n}@example.com", referral_code=f"R{n:06d}", balance=0))
    services.integrations.install(services.db, "dry")
    return row.id, out


def _exported(out: Path) -> list[str]:
    if not out.exists():
        return []
    return [
        line["email"]
        for line in map(json.loads, out.read_text().splitlines())
        if line["kind"] == "contact"
    ]


def _run_until_finished(services: Services, job_id: int) -> ExportJob:
    stop = threading.Event()
    worker = services.worker(worker_id="test-runner")
    runner = threading.Thread(target=worker.run_forever, args=(stop,), kwargs={"idle": 0.05})
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with services.db.transaction() as session:
                job = session.get(ExportJob, job_id)
            if job.status == ExportStatus.FINISHED:
                return job
            time.sleep(0.05)
        raise AssertionError(f"export {job_id} still {job.status} at {job.done}/{job.total}")
    finally:
        stop.set()
        runner.join(10)


def test_a_queued_export_is_run_by_the_worker(services: Services, tmp_path: Path) -> None:
    integration_id, out = _setup(services, tmp_path, 2500)
    job = queue_export(services.db, integration_id)

    finished = _run_until_finished(services, job.id)

    assert (finished.done, finished.total, finished.failed) == (2500, 2500, 0)
    assert sorted(_exported(out)) == sorted(f"c{n}@example.com" for n in range(2500))


def test_an_export_whose_process_died_is_finished_where_it_stopped(
    services: Services, tmp_path: Path
) -> None:
    integration_id, out = _setup(services, tmp_path, 2500)
    with services.db.transaction() as session:
        ids = list(session.scalars(select(Customer.id).order_by(Customer.id)))
        # A process sent the first 1,000 and was killed: its sending lease has lapsed.
        session.add(
            ExportJob(
                integration_id=integration_id,
                status=ExportStatus.RUNNING,
                cursor=ids[999],
                total=2500,
                done=1000,
                started_at=datetime.now(UTC),
            )
        )
        integration = session.get(IntegrationRow, integration_id)
        integration.lease_owner = "killed-process"
        integration.lease_until = datetime.now(UTC) - timedelta(seconds=1)
    job_id = queue_export(services.db, integration_id).id

    finished = _run_until_finished(services, job_id)

    assert finished.done == 2500
    assert sorted(_exported(out)) == sorted(f"c{n}@example.com" for n in range(1000, 2500))
