"""What a call's answer means for its outbox rows: delivered, or failed and tried again
after a backoff, or dead (a dead letter an admin can replay). Export pages are recorded by
their export instead: they have no outbox rows.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pointbridge.contract.errors import PermanentError, RateLimited, TransientError
from pointbridge.contract.platform import Integration, ItemFailure
from pointbridge.delivery import metrics
from pointbridge.delivery.calls import Call
from pointbridge.delivery.claims import outbox
from pointbridge.delivery.export_pages import ExportRound, Page
from pointbridge.kit.ratelimit import UNSAID_FIRST_WAIT
from pointbridge.storage.db import Database
from pointbridge.storage.models import OutboxMessage, OutboxStatus, outbox_status_is
from pointbridge.storage.sql import among

# After a whole call failed, its retry waits at least this many times as long as the call took
# (a timed-out request the platform is still working on gets that long to land first).
RETRY_FLOOR_FACTOR = 2.0


ItemError = PermanentError | TransientError | RateLimited


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


def record_page(
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


class Outcomes:
    """Records calls' outcomes on their outbox rows, one transaction per call."""

    def __init__(self, db: Database, *, max_attempts: int, backoff: Backoff) -> None:
        self.db = db
        self.max_attempts = max_attempts
        self.backoff = backoff

    def record_call(
        self,
        call: Call,
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
        return self.record(
            integration,
            call.kind,
            delivered,
            failed,
            call.rows_by_key,
            call.created,
            retry_floor,
        )

    def record(
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
                self.fail_rows(session, errors, now, retry_floor)
        latency = metrics.DELIVERY_LATENCY.labels(integration.name, kind)
        for row in delivered_rows:
            latency.observe((now - created[row]).total_seconds())
        metrics.DELIVERED.labels(integration.name, kind).inc(len(delivered_rows))
        failed_rows = sum(len(rows_by_key.get(k, [])) for k in failed)
        if failed_rows:
            metrics.FAILED.labels(integration.name, kind).inc(failed_rows)
        return RoundResult(delivered=len(delivered_rows), failed=failed_rows)

    def fail_rows(
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
