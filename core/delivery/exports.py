"""Full exports of every customer to one integration: queue, follow, cancel; or a CSV file.

The delivery worker sends an export's pages (``core.export_pages``) whenever no live change is
due, in id order, a page of the platform's batch size per call; the job row records its cursor
after each page, so an export stopped by a crash, a restart or Ctrl-C continues where it
stopped. A contact the platform refuses for good is recorded as an ``ExportFailure``; one it
cannot take right now is handed to the outbox, whose worker retries it with backoff.
"""

from __future__ import annotations

import csv
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TextIO

from sqlalchemy import select, update

from pointbridge.contract.contact import Contact
from pointbridge.contract.errors import PointbridgeError
from pointbridge.contract.platform import Capability, InstallResult
from pointbridge.delivery.export_pages import ACTIVE, start
from pointbridge.delivery.holds import paused_for
from pointbridge.delivery.outbox import Outbox
from pointbridge.delivery.snapshots import contact_page
from pointbridge.delivery.worker import Backoff, Worker
from pointbridge.integrations import InitialSync, Integrations
from pointbridge.storage.db import Database
from pointbridge.storage.models import (
    ExportFailure,
    ExportJob,
    ExportStatus,
    IntegrationRow,
    IntegrationStatus,
)

log = logging.getLogger(__name__)

UNFINISHED = (ExportStatus.QUEUED, ExportStatus.RUNNING, ExportStatus.FAILED)
# How often a foreground export looks again when another worker holds the integration.
LEASE_POLL = 0.5


class ExportError(PointbridgeError):
    pass


@dataclass(frozen=True)
class Progress:
    job_id: int
    status: str
    done: int
    total: int
    failed: int
    deferred: int
    rate: float  # customers per second since the job started
    last_error: str | None

    @property
    def eta_seconds(self) -> float | None:
        if self.rate <= 0:
            return None
        return max(0, self.total - self.done) / self.rate


def progress_of(job: ExportJob) -> Progress:
    elapsed = 0.0
    if job.started_at is not None:
        end = job.finished_at or datetime.now(UTC)
        elapsed = (end - job.started_at).total_seconds()
    return Progress(
        job.id,
        job.status,
        job.done,
        job.total,
        job.failed,
        job.deferred,
        job.done / elapsed if elapsed > 0 else 0.0,
        job.last_error,
    )


def queue_export(db: Database, integration_id: int, *, restart: bool = False) -> ExportJob:
    """The integration's unfinished export, or a new queued one (``restart`` cancels the old).

    An integration never installed is refused: its fields do not exist on the platform yet,
    and the export would wait, queued, for an install nobody was told to run. So are a
    disabled one and a failing one, which nothing is sent to until they are enabled or fixed."""
    with db.transaction() as session:
        # One queuer at a time per integration (SQLite's writers are one at a time anyway): on
        # PostgreSQL, restarts at once each saw the same unfinished export, each queued its
        # own, and every one of them ran to the end.
        name, status = session.execute(
            select(IntegrationRow.name, IntegrationRow.status)
            .where(IntegrationRow.id == integration_id)
            .with_for_update()
        ).one()
        if status == IntegrationStatus.NEW:
            raise ExportError(
                f"{name} was never installed: install it first (`pointbridge integrations "
                f"install {name}`, or POST /api/integrations/{name}/install), which creates its "
                "fields on the platform; then export."
            )
        if status == IntegrationStatus.DISABLED:
            raise ExportError(
                f"{name} is disabled: enable it first (`pointbridge integrations enable {name}`, "
                f"or POST /api/integrations/{name}/enable); then export."
            )
        if status == IntegrationStatus.FAILING:
            raise ExportError(
                f"{name} is failing (`pointbridge integrations show {name}` says why): fix it "
                f"and install again (`pointbridge integrations install {name}`), which resumes "
                "delivery; then export."
            )
        existing = session.scalar(
            select(ExportJob)
            .where(ExportJob.integration_id == integration_id, ExportJob.status.in_(UNFINISHED))
            .order_by(ExportJob.id.desc())
        )
        if existing is not None and not restart:
            if existing.status == ExportStatus.FAILED:  # resumed where it stopped
                existing.status = ExportStatus.QUEUED
                existing.last_error = None
            return existing
        if existing is not None:
            existing.status = ExportStatus.CANCELLED
        job = ExportJob(integration_id=integration_id, status=ExportStatus.QUEUED, cursor=0)
        session.add(job)
        session.flush()
        return job


def latest_export(db: Database, integration_id: int) -> ExportJob | None:
    with db.transaction() as session:
        return session.scalar(
            select(ExportJob)
            .where(ExportJob.integration_id == integration_id)
            .order_by(ExportJob.id.desc())
        )


def cancel_export(db: Database, integration_id: int) -> int:
    with db.transaction() as session:
        return session.execute(
            update(ExportJob)
            .where(ExportJob.integration_id == integration_id, ExportJob.status.in_(UNFINISHED))
            .values(status=ExportStatus.CANCELLED)
            .execution_options(synchronize_session=False)
        ).rowcount


def export_failures(db: Database, job_id: int, limit: int = 1000) -> list[ExportFailure]:
    with db.transaction() as session:
        return list(
            session.scalars(
                select(ExportFailure)
                .where(ExportFailure.job_id == job_id)
                .order_by(ExportFailure.id)
                .limit(limit)
            )
        )


class Exporter:
    """Runs one export in the foreground (``pointbridge export``): worker rounds for the
    export's integration until the export ends. The rounds send live changes too, first, as
    any worker's do; a background worker that holds the integration meanwhile sends the
    export's pages itself, and this one waits its turn."""

    def __init__(
        self,
        db: Database,
        integrations: Integrations,
        outbox: Outbox,
        *,
        owner: str,
        lease_seconds: float = 60.0,
        backoff: Backoff | None = None,
    ) -> None:
        self.db = db
        self.worker = Worker(
            db,
            integrations,
            worker_id=owner,
            lease_seconds=lease_seconds,
            backoff=backoff,
            outbox=outbox,
            max_attempts=integrations.settings.max_attempts,
        )

    def run(
        self,
        job_id: int,
        *,
        stop: threading.Event | None = None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> Progress:
        """Deliver until the job is finished, cancelled or failed, the integration needs an
        admin, or ``stop`` is set (the pages at the platform then finish first)."""
        stop = stop or threading.Event()
        self.worker.stop = stop
        if on_progress is not None:
            self.worker.exports.on_progress = lambda job: on_progress(self._progress(job))
        with self.db.transaction() as session:
            job = session.get(ExportJob, job_id)
            if job is None:
                raise ExportError(f"No export {job_id}.")
            start(session, job)
        if on_progress is not None:
            on_progress(self._progress(job_id))
        while not stop.is_set():
            job = self._job(job_id)
            if job.status not in ACTIVE or not self._active(job.integration_id):
                break
            wait = paused_for(self.db, job.integration_id) or self.worker.exports.retry_in(job.id)
            if wait:
                if stop.wait(wait):
                    break
                continue
            if self.worker.deliver(job.integration_id) is None and stop.wait(LEASE_POLL):
                break  # another worker holds the integration: it sends the pages meanwhile
        return self._progress(job_id)

    def _job(self, job_id: int) -> ExportJob:
        with self.db.read() as session:
            job = session.get(ExportJob, job_id)
            if job is None:
                raise ExportError(f"No export {job_id}.")
            return job

    def _progress(self, job_id: int) -> Progress:
        return progress_of(self._job(job_id))

    def _active(self, integration_id: int) -> bool:
        with self.db.read() as session:
            status = session.scalar(
                select(IntegrationRow.status).where(IntegrationRow.id == integration_id)
            )
        return status == IntegrationStatus.ACTIVE


def write_csv(
    db: Database, integrations: Integrations, integration_name: str, out: TextIO, page: int = 1000
) -> int:
    """Stream every customer as the platform's CSV rows; constant memory. Returns the count."""
    with db.transaction() as session:
        row = integrations.get(session, integration_name)
        integration = integrations.view(row)
    platform = integrations.host.platform(integration.platform)
    if not platform.supports(Capability.CSV_EXPORT) or platform.csv_row is None:
        raise ExportError(f"{platform.title} does not offer a CSV export.")
    writer: csv.DictWriter | None = None
    count = 0
    for contacts in _contact_pages(db, integrations.settings.referral_prefix, page):
        for contact in contacts:
            values = platform.csv_row(integration, contact)
            if writer is None:
                writer = csv.DictWriter(out, fieldnames=list(values))
                writer.writeheader()
            writer.writerow(values)
            count += 1
    return count


def _contact_pages(db: Database, referral_prefix: str, page: int) -> Iterator[list[Contact]]:
    after = 0
    while True:
        with db.read() as session:
            contacts = contact_page(session, after, page, referral_prefix)
        if not contacts:
            return
        yield contacts
        after = contacts[-1].customer_id


@dataclass(frozen=True)
class Activation:
    """What an install did, and the initial sync it queued (None: nobody is sent again)."""

    result: InstallResult
    initial_sync: InitialSync | None
    export: ExportJob | None


def activate(
    db: Database, integrations: Integrations, name: str, *, resync: bool = False
) -> Activation:
    """Install the integration and, at its first activation, on a new target or when asked,
    queue the initial sync of every customer for the worker to send."""
    result = integrations.install(db, name)
    reason = integrations.claim_initial_sync(db, name, resync=resync)
    if reason is None:
        return Activation(result, None, None)
    with db.read() as session:
        integration_id = integrations.get(session, name).id
    # A sync to the old target is of no use any more; a first one already queued is kept.
    job = queue_export(db, integration_id, restart=reason != InitialSync.FIRST)
    return Activation(result, reason, job)
