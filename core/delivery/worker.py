"""The delivery worker, the only sender: claim, coalesce, batch, send, record what happened.

Live changes come from the outbox; when none is due, the integration's export (or initial
sync) hands the worker its next page (``core.export_pages``), so every rule (pacing, 429
pauses, failing integrations, metrics) is kept once, here.

Up to the platform's ``max_in_flight`` calls run at once, never two with the same customer,
while the next call is read from the database (``core.claims``). One worker at a time holds
an integration's sending lease (a compare-and-set on the integration row), which keeps the
platform's rate budget whole however many workers run, on SQLite or PostgreSQL alike.
Workers spread across integrations. A lease that is not renewed (the worker died) lapses and
another worker takes over; rows it had sent but not yet marked go out again, which is why
deliveries are upserts and at-least-once.
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import exists, or_, select, update
from sqlalchemy.orm import Session

from pointbridge.contract.contact import Contact
from pointbridge.contract.errors import (
    ConfigurationError,
    PermanentError,
    RateLimited,
    TransientError,
)
from pointbridge.contract.events import Event, EventType
from pointbridge.contract.platform import Integration, ItemFailure, Platform
from pointbridge.delivery import leases, metrics
from pointbridge.delivery.claims import CLAIM, CLAIM_PAST_BUSY, COVERED_CONTACTS, outbox
from pointbridge.delivery.export_pages import ACTIVE as EXPORTING
from pointbridge.delivery.export_pages import ExportPages, ExportRound, Page
from pointbridge.delivery.outbox import Outbox
from pointbridge.integrations import Integrations
from pointbridge.kit.ratelimit import (
    UNSAID_FIRST_WAIT,
    Pacer,
    pacer_for,
    throttle_cleared,
    throttle_wait,
)
from pointbridge.plugins import PluginHost
from pointbridge.storage.db import Database
from pointbridge.storage.models import (
    Customer,
    ExportJob,
    IntegrationRow,
    IntegrationStatus,
    OutboxKind,
    OutboxMessage,
    OutboxStatus,
    outbox_status_is,
)
from pointbridge.storage.sql import among

log = logging.getLogger(__name__)

# After a whole call failed, its retry waits at least this many times as long as the call took
# (a timed-out request the platform is still working on gets that long to land first).
RETRY_FLOOR_FACTOR = 2.0


ItemError = PermanentError | TransientError | RateLimited


def now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass
class Backoff:
    """Exponential backoff with jitter: base * 2^(attempt-1), capped, times 0.5..1."""

    base: float = 2.0
    cap: float = 3600.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        return min(self.cap, self.base * 2 ** max(0, attempt - 1)) * self.rng.uniform(0.5, 1.0)


@dataclass
class RoundResult:
    delivered: int = 0
    failed: int = 0

    def __iadd__(self, other: RoundResult) -> RoundResult:
        self.delivered += other.delivered
        self.failed += other.failed
        return self


@dataclass
class _Call:
    """One hook call, read from the database and ready to send."""

    hook: str
    kind: str
    kwargs: dict[str, Any]
    rows_by_key: dict[int, list[int]]  # Contact.customer_id or Event.id -> outbox rows
    created: dict[int, datetime]  # outbox row -> created_at
    customers: frozenset[int]
    page: Page | None = None  # an export page: no outbox rows, recorded by the export


def call_plugin(
    host: PluginHost, integration: Integration, pacer: Pacer, hook: str, **kwargs: Any
) -> Sequence[ItemFailure]:
    """One hook call in the integration's pacer slot (the caller holds the integration's
    sending lease)."""
    with pacer.call():
        return host.call(hook, integration.platform, integration=integration, **kwargs) or []


def pause(db: Database, integration: Integration, seconds: float) -> None:
    """The platform said to slow down: no worker sends for the integration for ``seconds``."""
    log.info("%s rate limited; pausing %.1f s", integration.name, seconds)
    with db.transaction() as session:
        session.execute(
            update(IntegrationRow)
            .where(IntegrationRow.id == integration.id)
            .values(resume_at=now_utc() + timedelta(seconds=seconds))
            .execution_options(synchronize_session=False)
        )


def paused_for(db: Database, integration_id: int) -> float:
    """Seconds until the integration's rate-limit pause ends (0 when it is not paused)."""
    with db.read() as session:
        resume_at = session.scalar(
            select(IntegrationRow.resume_at).where(IntegrationRow.id == integration_id)
        )
    return 0.0 if resume_at is None else max(0.0, (resume_at - now_utc()).total_seconds())


@dataclass
class _Turn:
    """One worker's turn at sending for one integration."""

    integration: Integration
    pacer: Pacer
    at_platform: threading.BoundedSemaphore
    export: ExportRound
    # Set when a call was told to stop (429, configuration): calls not yet at the platform
    # are not sent.
    halted: threading.Event = field(default_factory=threading.Event)


class Worker:
    def __init__(
        self,
        db: Database,
        integrations: Integrations,
        *,
        max_attempts: int = 12,
        lease_seconds: float = 30.0,
        backoff: Backoff | None = None,
        worker_id: str | None = None,
        round_seconds: float = 5.0,
        outbox: Outbox | None = None,
    ) -> None:
        self.db = db
        self.integrations = integrations
        self.host = integrations.host
        self.exports = ExportPages(
            db,
            outbox or Outbox(self.host),
            integrations.settings.referral_prefix,
            lambda attempt: self.backoff.delay(attempt),
        )
        # Set to stop issuing calls; those at the platform finish and are recorded.
        self.stop = threading.Event()
        self.max_attempts = max_attempts
        self.lease = timedelta(seconds=lease_seconds)
        self.backoff = backoff or Backoff()
        self.worker_id = worker_id or f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
        self.round_seconds = round_seconds

    def _acquire(self, integration_id: int) -> bool:
        return leases.acquire(self.db, IntegrationRow, integration_id, self.worker_id, self.lease)

    def _release(self, integration_id: int) -> None:
        leases.release(self.db, IntegrationRow, integration_id, self.worker_id)

    # the loop ----------------------------------------------------------------------------

    def _candidates(self) -> list[int]:
        now = now_utc()
        with self.db.read() as session:
            due = exists().where(
                OutboxMessage.integration_id == IntegrationRow.id,
                outbox_status_is(OutboxStatus.PENDING),
                OutboxMessage.next_attempt_at <= now,
            )
            exporting = exists().where(
                ExportJob.integration_id == IntegrationRow.id, ExportJob.status.in_(EXPORTING)
            )
            ids = session.scalars(
                select(IntegrationRow.id).where(
                    IntegrationRow.status == IntegrationStatus.ACTIVE,
                    IntegrationRow.platform.in_(list(self.host.platforms)),
                    or_(IntegrationRow.resume_at.is_(None), IntegrationRow.resume_at <= now),
                    or_(
                        IntegrationRow.lease_until.is_(None),
                        IntegrationRow.lease_until < now,
                        IntegrationRow.lease_owner == self.worker_id,
                    ),
                    or_(due, exporting),
                )
            ).all()
        random.shuffle(ids)  # workers starting together spread over integrations
        return ids

    def run_once(self) -> RoundResult:
        """One pass over every integration with due rows whose lease this worker can take."""
        total = RoundResult()
        for integration_id in self._candidates():
            total += self.deliver(integration_id) or RoundResult()
        return total

    def deliver(self, integration_id: int) -> RoundResult | None:
        """One round for one integration; None when another worker holds its lease."""
        if not self._acquire(integration_id):
            return None
        try:
            return self._deliver_integration(integration_id)
        finally:
            self._release(integration_id)

    def drain(self, *, timeout: float | None = None) -> RoundResult:
        """Deliver until nothing is due (rows backing off later are left for later)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        total = RoundResult()
        while deadline is None or time.monotonic() < deadline:
            result = self.run_once()
            total += result
            if result.delivered == 0 and result.failed == 0:
                break
        return total

    def run_forever(
        self, stop: threading.Event, wakeup: threading.Event | None = None, idle: float = 1.0
    ) -> None:
        """Deliver until ``stop`` is set; sleep ``idle`` seconds (or until woken) when idle."""
        log.info("worker %s started", self.worker_id)
        self.stop = stop
        while not stop.is_set():
            try:
                result = self.run_once()
            except Exception:
                log.exception("delivery round failed; retrying shortly")
                result = RoundResult()
            if result.delivered or result.failed:
                continue
            if wakeup is not None:
                wakeup.wait(idle)
                wakeup.clear()
            else:
                stop.wait(idle)
        log.info("worker %s stopped", self.worker_id)

    # one integration ---------------------------------------------------------------------

    def _deliver_integration(self, integration_id: int) -> RoundResult:
        """Send for one integration until nothing is due or the round is over.

        Up to the platform's ``max_in_flight`` calls are at the platform at once, sent from
        sender threads; one more sender records its call's outcome meanwhile (a database
        commit, which on PostgreSQL took a third as long as the call). This thread has the
        next call read from the database before a sender is free for it, so the platform's
        round trip, not the database work, sets the pace. A customer in a running call is
        left out of the next ones until its call is recorded: a later push overtaking an
        earlier one could leave the platform with the older state, or an event before its
        contact fields.
        """
        with self.db.read() as session:
            row = session.get(IntegrationRow, integration_id)
            if row is None:
                return RoundResult()
            integration = self.integrations.view(row)
        platform = self.host.platform(integration.platform)
        deadline = time.monotonic() + self.round_seconds
        total = RoundResult()
        running: dict[Future[RoundResult], _Call] = {}
        ready: _Call | None = None
        stopping = False
        turn = _Turn(
            integration,
            pacer_for(integration_id, platform.rate_limit),
            threading.BoundedSemaphore(platform.max_in_flight),
            self.exports.round(integration_id),
        )
        senders = platform.max_in_flight + 1
        with (
            leases.kept(
                self.db, IntegrationRow, integration_id, self.worker_id, self.lease
            ) as lost,
            ThreadPoolExecutor(senders, thread_name_prefix="pointbridge-send") as sender,
        ):
            try:
                while True:
                    stopping = (
                        stopping
                        or time.monotonic() >= deadline
                        or lost.is_set()
                        or self.stop.is_set()
                    )
                    if stopping:
                        if ready is not None and ready.page is not None:
                            turn.export.not_taken(ready.page)
                        ready = None  # its rows stay pending for the next round
                    elif ready is None:
                        ready = self._next_call(
                            integration, platform, running.values(), turn.export
                        )
                    if ready is not None and len(running) < senders:
                        send = sender.submit(self._call, turn, ready)
                        running[send] = ready
                        ready = None
                        continue
                    if not running:
                        break
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        del running[future]
                        try:
                            total += future.result()
                        except _StopIntegration:
                            stopping = True
            finally:
                for future in running:
                    with contextlib.suppress(_StopIntegration):
                        total += future.result()
        return total

    def _next_call(
        self,
        integration: Integration,
        platform: Platform,
        running: Iterable[_Call],
        export: ExportRound,
    ) -> _Call | None:
        """The next call to make: live contacts first, then live events, read from the
        database in one transaction, then the export's next page; None if nothing is due for
        customers outside the ``running`` calls."""
        busy = frozenset().union(*(call.customers for call in running))
        parameters = {
            "integration_id": integration.id,
            "now": now_utc(),
            "limit": max(platform.max_batch, platform.max_event_batch),
            "busy": busy,
        }
        with self.db.read() as session:
            rows = session.execute(CLAIM_PAST_BUSY if busy else CLAIM, parameters).all()
            customer_ids = list(
                dict.fromkeys(r.customer_id for r in rows if r.kind == OutboxKind.CONTACT)
            )
            if customer_ids:
                return self._contacts_call(session, integration, customer_ids[: platform.max_batch])
            event_ids = [r.id for r in rows if r.kind == OutboxKind.EVENT]
            if event_ids:
                return self._events_call(session, event_ids[: platform.max_event_batch])
        page = export.next_page(platform.max_batch, busy)
        if page is None:
            return None
        return _Call(
            "push_contact",
            OutboxKind.CONTACT,
            {"contacts": page.contacts},
            {},
            {},
            page.customer_ids,
            page,
        )

    def _contacts_call(
        self, session: Session, integration: Integration, customer_ids: Sequence[int]
    ) -> _Call:
        # Every pending update of these customers, each with its customer's current fields,
        # in one read: the snapshot covers every update read with it. That is the
        # coalescing, latest state wins.
        covered = session.execute(
            COVERED_CONTACTS,
            {
                "integration_id": integration.id,
                "customer_ids": customer_ids,
                "referral_prefix": self.integrations.settings.referral_prefix,
            },
        ).all()
        rows_by_key: dict[int, list[int]] = defaultdict(list)
        created: dict[int, datetime] = {}
        contacts: dict[int, Contact] = {}
        for row_id, created_at, *customer in covered:
            customer_id = customer[0]
            rows_by_key[customer_id].append(row_id)
            created[row_id] = created_at
            if customer_id not in contacts:
                contacts[customer_id] = Contact(*customer)
        items = [contacts[c] for c in customer_ids if c in contacts]
        return _Call(
            "push_contact",
            OutboxKind.CONTACT,
            {"contacts": items},
            rows_by_key,
            created,
            frozenset(customer_ids),
        )

    def _events_call(self, session: Session, event_ids: Sequence[int]) -> _Call:
        messages = session.execute(
            select(
                OutboxMessage.id,
                OutboxMessage.customer_id,
                OutboxMessage.event_type,
                OutboxMessage.payload,
                OutboxMessage.created_at,
                Customer.email,
            )
            .join(Customer, Customer.id == OutboxMessage.customer_id)
            .where(among(OutboxMessage.id, event_ids))
            .order_by(OutboxMessage.id)
        ).all()
        events = [
            Event(
                id=m.id,
                type=EventType(m.event_type),
                customer_id=m.customer_id,
                email=m.email,
                occurred_at=m.created_at,
                data=m.payload,
            )
            for m in messages
        ]
        return _Call(
            "emit_event",
            OutboxKind.EVENT,
            {"events": events},
            {m.id: [m.id] for m in messages},
            {m.id: m.created_at for m in messages},
            frozenset(m.customer_id for m in messages),
        )

    def _call(self, turn: _Turn, call: _Call) -> RoundResult:
        integration = turn.integration
        with turn.at_platform:
            if turn.halted.is_set():
                # A call before this one was told to stop; its pause holds everything back.
                if call.page is not None:
                    turn.export.not_taken(call.page)
                return RoundResult()
            started = time.monotonic()
            try:
                outcome = self._send(turn, call)
            finally:
                elapsed = time.monotonic() - started
                metrics.CALL_SECONDS.labels(integration.name, call.hook).observe(elapsed)
            failures, whole_call_failed = outcome
            throttled = [f.error for f in failures if isinstance(f.error, RateLimited)]
            if throttled:
                turn.halted.set()  # before the next call may take the platform slot
        if call.page is not None:
            result = self._record_page(turn.export, call.page, failures, whole_call_failed)
        else:
            result = self._record_call(call, integration, failures, whole_call_failed, elapsed)
        if throttled:
            # The platform cut the call short: what was not tried waits, and so does everything
            # else for this integration, until the platform's reset.
            pause(self.db, integration, throttle_wait(integration.id, throttled))
            metrics.RATE_LIMITED.labels(integration.name).inc()
            raise _StopIntegration
        throttle_cleared(integration.id)
        return result

    def _send(
        self, turn: _Turn, call: _Call
    ) -> tuple[Sequence[ItemFailure], PermanentError | TransientError | None]:
        """The call's item failures, and the error when the call failed as a whole; raises
        ``_StopIntegration`` (and halts the turn) when nothing more may be sent."""
        integration = turn.integration
        keys = list(call.rows_by_key) if call.page is None else sorted(call.customers)
        try:
            return call_plugin(self.host, integration, turn.pacer, call.hook, **call.kwargs), None
        except (RateLimited, ConfigurationError) as exc:
            turn.halted.set()
            if call.page is not None:
                turn.export.not_taken(call.page)
            if isinstance(exc, RateLimited):
                pause(self.db, integration, throttle_wait(integration.id, [exc]))
                metrics.RATE_LIMITED.labels(integration.name).inc()
            else:
                self._mark_failing(integration, str(exc))
            raise _StopIntegration from None
        except (PermanentError, TransientError) as exc:
            return [ItemFailure(key, exc) for key in keys], exc
        except Exception as exc:  # a plugin bug must not stop the other integrations
            log.exception("%s.%s raised unexpectedly", integration.platform, call.hook)
            error = TransientError(f"plugin error: {type(exc).__name__}: {exc}")
            return [ItemFailure(key, error) for key in keys], error

    @staticmethod
    def _record_page(
        export: ExportRound,
        page: Page,
        failures: Sequence[ItemFailure],
        whole_call_failed: PermanentError | TransientError | None,
    ) -> RoundResult:
        if isinstance(whole_call_failed, TransientError):
            export.not_taken(page, whole_call_failed)
            return RoundResult(failed=len(page.contacts))
        export.sent(page, failures)
        failed = len({f.key for f in failures})
        return RoundResult(delivered=len(page.contacts) - failed, failed=failed)

    def _record_call(
        self,
        call: _Call,
        integration: Integration,
        failures: Sequence[ItemFailure],
        whole_call_failed: PermanentError | TransientError | None,
        elapsed: float,
    ) -> RoundResult:
        failed = {f.key: f.error for f in failures if f.key in call.rows_by_key}
        delivered = {k: v for k, v in call.rows_by_key.items() if k not in failed}
        # A call that timed out may still be running on the platform: retrying sooner than
        # it took would race the stale request, which could land after the retry's newer data.
        retry_floor = RETRY_FLOOR_FACTOR * elapsed if whole_call_failed else 0.0
        return self._record(
            integration,
            call.kind,
            delivered,
            failed,
            call.rows_by_key,
            call.created,
            retry_floor,
        )

    def _record(
        self,
        integration: Integration,
        kind: str,
        delivered: dict[int, list[int]],
        failed: dict[int, ItemError],
        rows_by_key: dict[int, list[int]],
        created: dict[int, datetime],
        retry_floor: float = 0.0,
    ) -> RoundResult:
        now = now_utc()
        delivered_rows = [row for rows in delivered.values() for row in rows]
        with self.db.transaction() as session:
            if delivered_rows:
                session.execute(
                    update(OutboxMessage.__table__)
                    .where(
                        among(outbox.id, delivered_rows),
                        outbox_status_is(OutboxStatus.PENDING, outbox),
                    )
                    .values(
                        status=OutboxStatus.DELIVERED,
                        delivered_at=now,
                        attempts=outbox.attempts + 1,
                        last_error=None,
                    )
                )
            if failed:
                errors = {row: error for key, error in failed.items() for row in rows_by_key[key]}
                self._fail_rows(session, errors, now, retry_floor)
        latency = metrics.DELIVERY_LATENCY.labels(integration.name, kind)
        for row in delivered_rows:
            latency.observe((now - created[row]).total_seconds())
        metrics.DELIVERED.labels(integration.name, kind).inc(len(delivered_rows))
        failed_rows = sum(len(rows_by_key.get(k, [])) for k in failed)
        if failed_rows:
            metrics.FAILED.labels(integration.name, kind).inc(failed_rows)
        return RoundResult(delivered=len(delivered_rows), failed=failed_rows)

    def _fail_rows(
        self,
        session: Session,
        errors: dict[int, ItemError],
        now: datetime,
        retry_floor: float = 0.0,
    ) -> None:
        """Count a failed attempt on each row (row id -> error); one SELECT for them all.

        Rows that failed together on the same attempt wait the same jittered delay, so they
        are retried together, as one call, not split by their jitter into one call each."""
        delays: dict[int, float] = {}
        for message in session.scalars(
            select(OutboxMessage).where(
                among(OutboxMessage.id, errors), outbox_status_is(OutboxStatus.PENDING)
            )
        ):
            error = errors[message.id]
            message.last_error = str(error)[:2000]
            if isinstance(error, RateLimited):
                # Not tried, so no attempt is spent. The integration's pause (set for these
                # 429s just after, see _call) holds it back; its own wait covers a crash
                # between the two commits, so it never goes straight back into the limit.
                wait = UNSAID_FIRST_WAIT if error.retry_after is None else error.retry_after
                message.next_attempt_at = now + timedelta(seconds=wait)
                continue
            message.attempts += 1
            if isinstance(error, PermanentError) or message.attempts >= self.max_attempts:
                message.status = OutboxStatus.DEAD
            else:
                if message.attempts not in delays:
                    delays[message.attempts] = self.backoff.delay(message.attempts)
                delay = max(retry_floor, delays[message.attempts])
                message.next_attempt_at = now + timedelta(seconds=delay)

    def _mark_failing(self, integration: Integration, message: str) -> None:
        log.warning("%s needs an admin; its deliveries wait: %s", integration.name, message)
        with self.db.transaction() as session:
            session.execute(
                update(IntegrationRow)
                .where(IntegrationRow.id == integration.id)
                .values(status=IntegrationStatus.FAILING, last_error=message)
                .execution_options(synchronize_session=False)
            )


class _StopIntegration(Exception):
    """Stop sending for this integration this round (paused or failing)."""
