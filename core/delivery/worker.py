"""The delivery worker, the only sender: claim, coalesce, batch, send, record what happened.

Live changes come from the outbox; when none is due, the integration's export (or initial
sync) hands the worker its next page (``pointbridge.delivery.export_pages``), so every rule
(pacing, 429 pauses, failing integrations, metrics) is kept once, here.

Up to the platform's ``max_in_flight`` calls run at once, never two with the same customer,
while the next call is read from the database (``pointbridge.delivery.calls``); what each
answer means for its rows is ``pointbridge.delivery.outcomes``. One worker at a time holds
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
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import exists, or_, select

from pointbridge.contract.errors import (
    ConfigurationError,
    PermanentError,
    RateLimited,
    TransientError,
)
from pointbridge.contract.platform import Integration, ItemFailure, Platform
from pointbridge.delivery import leases, metrics
from pointbridge.delivery.calls import Call, CallReader
from pointbridge.delivery.export_pages import ACTIVE as EXPORTING
from pointbridge.delivery.export_pages import ExportPages, ExportRound
from pointbridge.delivery.holds import mark_failing, pause
from pointbridge.delivery.outbox import Outbox
from pointbridge.delivery.outcomes import Backoff, Outcomes, RoundResult, now_utc, record_page
from pointbridge.integrations import Integrations, StoredSettingsRefused
from pointbridge.kit.ratelimit import Pacer, pacer_for, throttle_cleared, throttle_wait
from pointbridge.plugins import PluginHost
from pointbridge.storage.db import Database
from pointbridge.storage.models import (
    ExportJob,
    IntegrationRow,
    IntegrationStatus,
    OutboxKind,
    OutboxMessage,
    OutboxStatus,
    outbox_status_is,
)

log = logging.getLogger(__name__)

# How long changes may gather before a round that would carry only a few of them (fewer than
# FEW_ROWS): a tenth of a second of latency, against a round's own cost paid per change.
GATHER_SECONDS = 0.1
FEW_ROWS = 50


def call_plugin(
    host: PluginHost, integration: Integration, pacer: Pacer, hook: str, **kwargs: Any
) -> Sequence[ItemFailure]:
    """One hook call in the integration's pacer slot (the caller holds the integration's
    sending lease)."""
    with pacer.call():
        return host.call(hook, integration.platform, integration=integration, **kwargs) or []


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
    # The kind of the last live call read: while both kinds are due, they take turns.
    last_kind: str | None = None


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
        gather_seconds: float = GATHER_SECONDS,
    ) -> None:
        self.db = db
        self.integrations = integrations
        self.host = integrations.host
        backoff = backoff or Backoff()
        self.exports = ExportPages(
            db,
            outbox or Outbox(self.host),
            integrations.settings.referral_prefix,
            backoff.delay,
        )
        self.calls = CallReader(db, integrations.settings.referral_prefix)
        self.outcomes = Outcomes(db, max_attempts=max_attempts, backoff=backoff)
        # Set to stop issuing calls; those at the platform finish and are recorded.
        self.stop = threading.Event()
        self.lease = timedelta(seconds=lease_seconds)
        self.worker_id = worker_id or f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
        self.round_seconds = round_seconds
        self.gather_seconds = gather_seconds

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
        """Deliver until ``stop`` is set; sleep ``idle`` seconds (or until woken) when idle.

        A round costs about as much as the rows it carries (the lease, the integration's
        view, the claims): under a steady stream of changes, rounds run back to back each
        carried two or three, and the worker spent 0.65 ms of CPU a change. So a woken worker,
        and one whose round found only a few rows, gives the next changes ``gather_seconds``
        to come before it starts another round; a backlog is sent without pause.
        """
        log.info("worker %s started", self.worker_id)
        self.stop = stop
        while not stop.is_set():
            try:
                result = self.run_once()
            except Exception:
                log.exception("delivery round failed; retrying shortly")
                result = RoundResult()
            sent = result.delivered + result.failed
            if sent:
                if sent < FEW_ROWS:
                    stop.wait(self.gather_seconds)
                continue
            if wakeup is not None:
                if wakeup.wait(idle):
                    stop.wait(self.gather_seconds)
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
            try:
                integration = self.integrations.view(row)
            except StoredSettingsRefused as exc:
                # No round can load them, so the integration waits for an admin instead of
                # failing every round (and the rounds of the integrations after it).
                mark_failing(self.db, row, str(exc))
                return RoundResult()
        platform = self.host.platform(integration.platform)
        deadline = time.monotonic() + self.round_seconds
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

            def over() -> bool:
                return time.monotonic() >= deadline or lost.is_set() or self.stop.is_set()

            return self._send_calls(turn, platform, sender, senders, over)

    def _send_calls(
        self,
        turn: _Turn,
        platform: Platform,
        sender: ThreadPoolExecutor,
        senders: int,
        over: Callable[[], bool],
    ) -> RoundResult:
        """Keep ``senders`` calls going, each read before a sender is free for it, until
        nothing is due or the turn is ``over``; then wait for the running ones."""
        total = RoundResult()
        running: dict[Future[RoundResult], Call] = {}
        ready: Call | None = None
        stopping = False
        try:
            while True:
                stopping = stopping or over()
                if stopping:
                    if ready is not None and ready.page is not None:
                        turn.export.not_taken(ready.page)
                    ready = None  # its rows stay pending for the next round
                elif ready is None:
                    ready = self.calls.next_call(
                        turn.integration,
                        platform,
                        running.values(),
                        turn.export,
                        events_first=turn.last_kind == OutboxKind.CONTACT,
                    )
                    if ready is not None and ready.page is None:
                        turn.last_kind = ready.kind
                if ready is not None and len(running) < senders:
                    running[sender.submit(self._call, turn, ready)] = ready
                    ready = None
                    continue
                if not running:
                    return total
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

    def _call(self, turn: _Turn, call: Call) -> RoundResult:
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
            result = record_page(turn.export, call.page, failures, whole_call_failed)
        else:
            result = self.outcomes.record_call(
                call, integration, failures, whole_call_failed, elapsed
            )
        if throttled:
            # The platform cut the call short: what was not tried waits, and so does everything
            # else for this integration, until the platform's reset.
            pause(self.db, integration, throttle_wait(integration.id, throttled))
            metrics.RATE_LIMITED.labels(integration.name).inc()
            raise _StopIntegration
        throttle_cleared(integration.id)
        return result

    def _send(
        self, turn: _Turn, call: Call
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
                mark_failing(self.db, integration, str(exc))
            raise _StopIntegration from None
        except (PermanentError, TransientError) as exc:
            return [ItemFailure(key, exc) for key in keys], exc
        except Exception as exc:  # a plugin bug must not stop the other integrations
            log.exception("%s.%s raised unexpectedly", integration.platform, call.hook)
            error = TransientError(f"plugin error: {type(exc).__name__}: {exc}")
            return [ItemFailure(key, error) for key in keys], error


class _StopIntegration(Exception):
    """Stop sending for this integration this round (paused or failing)."""
