"""Full exports of every customer to one integration: resumable, cancelable, paced.

Customers go out in id order, a page of the platform's batch size per call, through the same
pacer and lease as live delivery. After each page the job row records its cursor, so an export
stopped by a crash, a restart or Ctrl-C continues where it stopped. A contact the platform
refuses for good is recorded as an ``ExportFailure``; one it cannot take right now is handed to
the outbox, whose worker retries it with backoff.
"""

from __future__ import annotations

import csv
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TextIO

from sqlalchemy import func, select, update

from pointbridge import leases
from pointbridge.contact import Contact
from pointbridge.db import Database
from pointbridge.delivery import Backoff, call_plugin, pause, paused_for
from pointbridge.errors import (
    ConfigurationError,
    PermanentError,
    PointbridgeError,
    RateLimited,
    TransientError,
)
from pointbridge.integrations import Integrations
from pointbridge.models import (
    Customer,
    ExportFailure,
    ExportJob,
    ExportStatus,
    IntegrationRow,
    IntegrationStatus,
)
from pointbridge.outbox import Outbox
from pointbridge.platform import Capability, Integration, ItemFailure
from pointbridge.ratelimit import pacer_for, throttle_cleared, throttle_wait
from pointbridge.snapshots import contact_page

log = logging.getLogger(__name__)

UNFINISHED = (ExportStatus.QUEUED, ExportStatus.RUNNING, ExportStatus.FAILED)
MAX_CALL_RETRIES = 8


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
    """The integration's unfinished export, or a new queued one (``restart`` cancels the old)."""
    with db.transaction() as session:
        existing = session.scalar(
            select(ExportJob)
            .where(ExportJob.integration_id == integration_id, ExportJob.status.in_(UNFINISHED))
            .order_by(ExportJob.id.desc())
        )
        if existing is not None and not restart:
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


class _Stopped(Exception):
    pass


class Exporter:
    def __init__(
        self,
        db: Database,
        integrations: Integrations,
        outbox: Outbox,
        *,
        owner: str,
        lease_seconds: float = 60.0,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.db = db
        self.integrations = integrations
        self.outbox = outbox
        self.owner = owner
        self.lease = timedelta(seconds=lease_seconds)
        self.backoff = backoff or Backoff()
        self._sleep = sleep

    def claimable(self) -> list[int]:
        """Queued or running jobs whose holder is gone (for workers to pick up)."""
        now = datetime.now(UTC)
        with self.db.transaction() as session:
            return list(
                session.scalars(
                    select(ExportJob.id)
                    .join(IntegrationRow, IntegrationRow.id == ExportJob.integration_id)
                    .where(
                        ExportJob.status.in_([ExportStatus.QUEUED, ExportStatus.RUNNING]),
                        IntegrationRow.status == IntegrationStatus.ACTIVE,
                        (ExportJob.lease_until.is_(None)) | (ExportJob.lease_until < now),
                    )
                    .order_by(ExportJob.id)
                )
            )

    def run(
        self,
        job_id: int,
        *,
        stop: threading.Event | None = None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> Progress:
        """Send pages until the job is finished, cancelled, failed, or ``stop`` is set."""
        stop = stop or threading.Event()
        if not leases.acquire(self.db, ExportJob, job_id, self.owner, self.lease):
            raise ExportError(f"Export {job_id} is being run by another process.")
        try:
            self._start(job_id)
            while not stop.is_set():
                job = self._job(job_id)
                if on_progress:
                    on_progress(progress_of(job))
                if job.status != ExportStatus.RUNNING or stop.is_set():
                    break
                if not self._page(job, stop):
                    break
            return progress_of(self._job(job_id))
        except _Stopped:
            return progress_of(self._job(job_id))
        finally:
            leases.release(self.db, ExportJob, job_id, self.owner)

    def _job(self, job_id: int) -> ExportJob:
        with self.db.read() as session:
            job = session.get(ExportJob, job_id)
            if job is None:
                raise ExportError(f"No export {job_id}.")
            return job

    def _start(self, job_id: int) -> None:
        with self.db.transaction() as session:
            job = session.get(ExportJob, job_id)
            if job is None or job.status in (ExportStatus.FINISHED, ExportStatus.CANCELLED):
                return
            job.status = ExportStatus.RUNNING
            job.last_error = None
            job.started_at = job.started_at or datetime.now(UTC)
            job.total = session.scalar(select(func.count(Customer.id))) or 0

    def _page(self, job: ExportJob, stop: threading.Event) -> bool:
        """Send the next page; False when the job ended (finished, failed)."""
        with self.db.read() as session:
            row = session.get(IntegrationRow, job.integration_id)
            integration = self.integrations.view(row)
            platform = self.integrations.host.platform(row.platform)
        pacer = pacer_for(integration.id, platform.rate_limit)
        attempt = 0
        while True:
            self._hold_integration(integration.id, job.id, stop)
            try:
                with leases.kept(self.db, IntegrationRow, integration.id, self.owner, self.lease):
                    # Read under the sending lease, at every attempt: live delivery cannot send
                    # a newer state between this read and this send, and whatever changes
                    # after the read is still pending in the outbox, sent after this page.
                    # Read before the lease, a page could overwrite what live delivery had
                    # sent meanwhile, with nothing left in the outbox to correct it.
                    contacts = self._read_page(job, platform.max_batch)
                    if not contacts:
                        break
                    failures = call_plugin(
                        self.integrations.host,
                        integration,
                        pacer,
                        "push_contact",
                        contacts=contacts,
                    )
                    self._pause_if_cut_short(integration, failures)
                break
            except RateLimited as exc:
                # Live delivery pauses too; the next turn waits it out (_hold_integration).
                pause(self.db, integration, throttle_wait(integration.id, [exc]))
            except ConfigurationError as exc:
                self._fail(job.id, str(exc), pause_integration=True)
                return False
            except PermanentError as exc:
                failures = [ItemFailure(c.customer_id, exc) for c in contacts]
                break
            except TransientError as exc:
                attempt += 1
                if attempt >= MAX_CALL_RETRIES:
                    self._fail(job.id, f"gave up after {attempt} attempts: {exc}")
                    return False
                self._wait(self.backoff.delay(attempt), stop)
            finally:
                leases.release(self.db, IntegrationRow, integration.id, self.owner)
        if not contacts:
            self._finish(job.id)
            return False
        self._record_page(job.id, contacts, failures)
        return True

    def _pause_if_cut_short(
        self, integration: Integration, failures: Sequence[ItemFailure]
    ) -> None:
        """A page the platform cut short (item-level 429s) pauses the integration: the untried
        go through the outbox, and nothing more is sent, live or exported, until the limit
        resets. Called under the sending lease, so no other sender starts before the pause."""
        throttled = [f.error for f in failures if isinstance(f.error, RateLimited)]
        if throttled:
            pause(self.db, integration, throttle_wait(integration.id, throttled))
        else:
            throttle_cleared(integration.id)

    def _read_page(self, job: ExportJob, size: int) -> list[Contact]:
        with self.db.read() as session:
            return contact_page(
                session, job.cursor, size, self.integrations.settings.referral_prefix
            )

    def _hold_integration(self, integration_id: int, job_id: int, stop: threading.Event) -> None:
        """Wait for the integration's sending lease (live delivery and exports take turns)
        and for any rate-limit pause to end, and renew the job's own lease; a lost job lease
        means another process took over."""
        while True:
            while not leases.acquire(
                self.db, IntegrationRow, integration_id, self.owner, self.lease
            ):
                self._wait(0.2, stop)
            wait = paused_for(self.db, integration_id)
            if not wait:
                break
            leases.release(self.db, IntegrationRow, integration_id, self.owner)
            self._wait(wait, stop)
        if not leases.acquire(self.db, ExportJob, job_id, self.owner, self.lease):
            raise _Stopped

    def _wait(self, seconds: float, stop: threading.Event) -> None:
        if stop.wait(seconds):
            raise _Stopped

    def _record_page(
        self, job_id: int, contacts: list[Contact], failures: Sequence[ItemFailure]
    ) -> None:
        by_key = {c.customer_id: c for c in contacts}
        permanent = {f.key: f.error for f in failures if isinstance(f.error, PermanentError)}
        transient = [f.key for f in failures if not isinstance(f.error, PermanentError)]
        with self.db.transaction() as session:
            for customer_id, error in permanent.items():
                if customer_id in by_key:
                    session.add(
                        ExportFailure(
                            job_id=job_id,
                            customer_id=customer_id,
                            email=by_key[customer_id].email,
                            error=str(error)[:2000],
                        )
                    )
            if transient:
                self.outbox.contacts_changed(session, transient)
            job = session.get(ExportJob, job_id)
            job.cursor = contacts[-1].customer_id
            job.done += len(contacts)
            job.failed += len(permanent)
            job.deferred += len(transient)

    def _finish(self, job_id: int) -> None:
        with self.db.transaction() as session:
            job = session.get(ExportJob, job_id)
            job.status = ExportStatus.FINISHED
            job.finished_at = datetime.now(UTC)
            job.done = max(job.done, job.total)

    def _fail(self, job_id: int, message: str, *, pause_integration: bool = False) -> None:
        with self.db.transaction() as session:
            job = session.get(ExportJob, job_id)
            job.status = ExportStatus.FAILED
            job.last_error = message
            if pause_integration:
                row = session.get(IntegrationRow, job.integration_id)
                row.status = IntegrationStatus.FAILING
                row.last_error = message


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
