"""An export as pages the delivery worker sends: a producer of calls, not a second sender.

An export (and a platform's initial sync) is a job row with a cursor over customer ids. The
worker, holding the integration's sending lease, asks for the next page only when no live
change is due, so live changes never wait behind a long export. The page is read at that
moment, under the lease: it cannot overwrite what live delivery already sent, and whatever
changes after the read is still pending in the outbox and goes out after it. Pages are sent
as any other call (pacing, ``max_in_flight``, 429 pauses, failing integrations: one set of
rules) and recorded in id order: the job's cursor advances over the pages recorded without a
gap, in one small write per page, so an export killed at any moment resumes after the last
customer known sent, re-sending at most what was in flight (contact pushes are upserts).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from pointbridge.contract.contact import Contact
from pointbridge.contract.errors import PermanentError, PointbridgeError
from pointbridge.contract.platform import ItemFailure
from pointbridge.delivery.outbox import Outbox
from pointbridge.delivery.snapshots import contact_page
from pointbridge.storage.db import Database
from pointbridge.storage.models import (
    Customer,
    ExportFailure,
    ExportJob,
    ExportStatus,
)

ACTIVE = (ExportStatus.QUEUED, ExportStatus.RUNNING)

# A page the platform could not take at all (5xx, timeout) is tried again after a backoff,
# this many times in a row before the export fails and says why; an admin resumes it with
# `pointbridge export NAME`.
MAX_PAGE_ATTEMPTS = 8


def start(session: Session, job: ExportJob) -> None:
    """A queued export starts: it counts the customers it is to send.

    The job is locked and read again first: on PostgreSQL a restart that cancelled it
    between the caller's read and this write would otherwise be overwritten with "running",
    and the old export would run beside the new one."""
    session.refresh(job, with_for_update=True)
    if job.status == ExportStatus.QUEUED:
        job.status = ExportStatus.RUNNING
        job.last_error = None
        job.started_at = job.started_at or datetime.now(UTC)
        job.total = session.scalar(select(func.count(Customer.id))) or 0


@dataclass(eq=False)
class Page:
    """One page of an export, read under the sending lease."""

    job_id: int
    after: int  # the job's cursor before this page
    contacts: list[Contact]
    failures: Sequence[ItemFailure] | None = None  # set once the platform answered

    @functools.cached_property
    def customer_ids(self) -> frozenset[int]:  # a page's contacts are never changed
        return frozenset(c.customer_id for c in self.contacts)


@dataclass
class _Retry:
    attempts: int = 0
    at: datetime | None = None


@dataclass
class ExportPages:
    """Export pages for the worker, and what it records of them.

    ``on_progress`` is told the job id after each page is recorded (the CLI's progress bar),
    from the worker's sender threads, one call at a time.
    Retry state of pages that failed as a whole lives here, in the worker's memory: a worker
    that restarts tries at once, which is what an admin restarting it wants.
    """

    db: Database
    outbox: Outbox
    referral_prefix: str
    backoff: Callable[[int], float]
    on_progress: Callable[[int], None] | None = None
    _retries: dict[int, _Retry] = field(default_factory=dict)

    def round(self, integration_id: int) -> ExportRound:
        return ExportRound(self, integration_id)

    def retry_in(self, job_id: int) -> float:
        """Seconds until the job's failed page is tried again (0 when it is not waiting)."""
        retry = self._retries.get(job_id)
        if retry is None or retry.at is None:
            return 0.0
        return max(0.0, (retry.at - datetime.now(UTC)).total_seconds())


class ExportRound:
    """The pages of one worker round for one integration (thread-safe: the worker's sender
    threads record pages while its main thread reads the next one)."""

    def __init__(self, pages: ExportPages, integration_id: int) -> None:
        self._pages = pages
        self._db = pages.db
        self._integration_id = integration_id
        self._lock = threading.Lock()
        self._job_id: int | None = None
        self._next_after = 0
        self._unrecorded: list[Page] = []  # read, in cursor order, not yet recorded

    def next_page(self, size: int, busy: Collection[int]) -> Page | None:
        """The next page to send, or None: no export, it is waiting to retry, it is
        finished, or the page holds a customer whose live call is still at the platform
        (sent together, the older state could land last)."""
        with self._lock:
            job = self._active_job()
            if job is None or self._pages.retry_in(job.id):
                return None
            if job.id != self._job_id:  # first page of this round, or a restarted export
                self._job_id, self._next_after, self._unrecorded = job.id, job.cursor, []
            with self._db.read() as session:
                contacts = contact_page(
                    session, self._next_after, size, self._pages.referral_prefix
                )
            if not contacts:
                if not self._unrecorded:
                    self._finish(job.id)
                return None
            page = Page(job.id, self._next_after, contacts)
            if not page.customer_ids.isdisjoint(busy):
                return None
            self._unrecorded.append(page)
            self._next_after = contacts[-1].customer_id
            return page

    def sent(self, page: Page, failures: Sequence[ItemFailure]) -> None:
        """The platform answered for the page; record it and every page before it."""
        with self._lock:
            page.failures = failures
            ready: list[Page] = []
            while self._unrecorded and self._unrecorded[0].failures is not None:
                ready.append(self._unrecorded.pop(0))
            if ready:
                self._record(ready)
                self._pages._retries.pop(page.job_id, None)
                if self._pages.on_progress:
                    # Under the lock: senders finish in any order, progress is told in order,
                    # one call at a time.
                    self._pages.on_progress(page.job_id)

    def not_taken(self, page: Page, error: PointbridgeError | None = None) -> None:
        """The platform took none of the page. It and the pages read after it are read
        again; with an ``error`` (5xx, timeout) only after a backoff, and after
        ``MAX_PAGE_ATTEMPTS`` the export fails with that error."""
        with self._lock:
            if page not in self._unrecorded:
                return
            del self._unrecorded[self._unrecorded.index(page) :]
            self._next_after = page.after
            if error is None:
                return
            retry = self._pages._retries.setdefault(page.job_id, _Retry())
            retry.attempts += 1
            if retry.attempts >= MAX_PAGE_ATTEMPTS:
                del self._pages._retries[page.job_id]
                self._fail(page.job_id, f"gave up after {retry.attempts} attempts: {error}")
                return
            retry.at = datetime.now(UTC) + timedelta(seconds=self._pages.backoff(retry.attempts))

    # the job row ---------------------------------------------------------------------------

    def _active_job(self) -> ExportJob | None:
        """The integration's running export; a queued one is started. Asked whenever no live
        change is due, so the usual answer (none, or running) takes a read, not the write
        lock that SQLite's API requests wait on."""
        query = (
            select(ExportJob)
            .where(ExportJob.integration_id == self._integration_id, ExportJob.status.in_(ACTIVE))
            .order_by(ExportJob.id)
            .limit(1)
        )
        with self._db.read() as session:
            job = session.scalar(query)
        if job is None or job.status != ExportStatus.QUEUED:
            return job
        with self._db.transaction() as session:
            job = session.scalar(query)
            if job is not None:
                start(session, job)
            return job

    def _record(self, pages: list[Page]) -> None:
        """The pages' outcome, in one transaction: refused contacts reported, the untried
        handed to this integration's outbox (the worker retries them with backoff), the
        cursor moved past them."""
        refused: list[dict[str, object]] = []
        deferred: list[int] = []
        for page in pages:
            emails = {c.customer_id: c.email for c in page.contacts}
            for failure in page.failures or ():
                if failure.key not in emails:
                    continue
                if isinstance(failure.error, PermanentError):
                    refused.append(
                        {
                            "job_id": page.job_id,
                            "customer_id": failure.key,
                            "email": emails[failure.key],
                            "error": str(failure.error)[:2000],
                        }
                    )
                else:
                    deferred.append(failure.key)
        with self._db.transaction() as session:
            if refused:
                session.execute(insert(ExportFailure), refused)
            self._pages.outbox.contacts_changed(session, deferred, [self._integration_id])
            session.execute(
                update(ExportJob)
                .where(ExportJob.id == pages[0].job_id)
                .values(
                    cursor=pages[-1].contacts[-1].customer_id,
                    done=ExportJob.done + sum(len(p.contacts) for p in pages),
                    failed=ExportJob.failed + len(refused),
                    deferred=ExportJob.deferred + len(deferred),
                )
                .execution_options(synchronize_session=False)
            )

    def _finish(self, job_id: int) -> None:
        with self._db.transaction() as session:
            job = session.get(ExportJob, job_id)
            if job is not None and job.status == ExportStatus.RUNNING:
                job.status = ExportStatus.FINISHED
                job.finished_at = datetime.now(UTC)
                job.done = max(job.done, job.total)

    def _fail(self, job_id: int, message: str) -> None:
        with self._db.transaction() as session:
            session.execute(
                update(ExportJob)
                .where(ExportJob.id == job_id)
                .values(status=ExportStatus.FAILED, last_error=message)
                .execution_options(synchronize_session=False)
            )
