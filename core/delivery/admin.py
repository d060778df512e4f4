"""What admins see and do with the outbox: status, dead letters, retry, purge."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, delete, func, select, update

from pointbridge.host_options import MAX_NOTICE_DAYS
from pointbridge.integrations import integration_named
from pointbridge.storage.db import Database
from pointbridge.storage.models import (
    Customer,
    IntegrationRow,
    IntegrationStatus,
    OutboxMessage,
    OutboxStatus,
    outbox_status_is,
)


@dataclass(frozen=True)
class OutboxLine:
    integration: str
    status: str
    pending: int
    retrying: int
    dead: int
    oldest_pending_seconds: float | None


def outbox_status(db: Database) -> list[OutboxLine]:
    # Pending and dead rows are counted apart, each over its own partial index, so the
    # figures cost as much as the backlog, not as much as the delivered history.
    pending = outbox_status_is(OutboxStatus.PENDING)
    with db.read() as session:
        integrations = session.execute(
            select(IntegrationRow.id, IntegrationRow.name, IntegrationRow.status).order_by(
                IntegrationRow.name
            )
        ).all()
        backlog = {
            integration_id: (fresh, retrying, oldest)
            for integration_id, fresh, retrying, oldest in session.execute(
                select(
                    OutboxMessage.integration_id,
                    func.count(case((OutboxMessage.attempts == 0, 1))),
                    func.count(case((OutboxMessage.attempts > 0, 1))),
                    func.min(OutboxMessage.created_at),
                )
                .where(pending)
                .group_by(OutboxMessage.integration_id)
            )
        }
        dead = dict(
            session.execute(
                select(OutboxMessage.integration_id, func.count())
                .where(outbox_status_is(OutboxStatus.DEAD))
                .group_by(OutboxMessage.integration_id)
            ).all()
        )
    now = datetime.now(UTC)
    lines = []
    for integration_id, name, status in integrations:
        fresh, retrying, oldest = backlog.get(integration_id, (0, 0, None))
        age = None if oldest is None else (now - oldest).total_seconds()
        lines.append(OutboxLine(name, status, fresh, retrying, dead.get(integration_id, 0), age))
    return lines


@dataclass(frozen=True)
class DeadLetter:
    id: int
    integration: str
    customer_email: str
    kind: str
    event_type: str | None
    attempts: int
    last_error: str | None
    created_at: datetime


def dead_letters(
    db: Database, integration: str | None = None, limit: int = 100
) -> list[DeadLetter]:
    with db.read() as session:
        statement = (
            select(
                OutboxMessage.id,
                IntegrationRow.name,
                Customer.email,
                OutboxMessage.kind,
                OutboxMessage.event_type,
                OutboxMessage.attempts,
                OutboxMessage.last_error,
                OutboxMessage.created_at,
            )
            .join(IntegrationRow, IntegrationRow.id == OutboxMessage.integration_id)
            .join(Customer, Customer.id == OutboxMessage.customer_id)
            .where(outbox_status_is(OutboxStatus.DEAD))
            .order_by(OutboxMessage.id)
            .limit(limit)
        )
        if integration is not None:  # an empty name is a name no integration has
            named = integration_named(session, integration)
            statement = statement.where(OutboxMessage.integration_id == named.id)
        return [DeadLetter(*row) for row in session.execute(statement)]


def retry(db: Database, integration: str | None = None, ids: Sequence[int] = ()) -> RetryResult:
    """Dead rows (all, one integration's, or by id) go back to pending, due now.

    Retrying an integration also lifts its ``failing`` state and any rate-limit pause: the
    admin fixed the credentials and wants what waited delivered.
    """
    now = datetime.now(UTC)
    with db.transaction() as session:
        statement = update(OutboxMessage).where(outbox_status_is(OutboxStatus.DEAD))
        reactivated: list[str] = []
        if integration is not None:  # an empty name is a name no integration has
            row = integration_named(session, integration)
            statement = statement.where(OutboxMessage.integration_id == row.id)
            if row.status == IntegrationStatus.FAILING:
                row.status = IntegrationStatus.ACTIVE
                row.last_error = None
                reactivated.append(row.name)
            row.resume_at = None
            session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.integration_id == row.id,
                    outbox_status_is(OutboxStatus.PENDING),
                )
                .values(next_attempt_at=now)
                .execution_options(synchronize_session=False)
            )
        if ids:
            statement = statement.where(OutboxMessage.id.in_(list(ids)))
        revived = session.execute(
            statement.values(
                status=OutboxStatus.PENDING, attempts=0, next_attempt_at=now
            ).execution_options(synchronize_session=False)
        ).rowcount
    return RetryResult(revived, reactivated)


@dataclass(frozen=True)
class RetryResult:
    revived: int
    reactivated: list[str]


# A row with a dedupe key (an expiry notice) is the only record that it was sent; purging it
# early would send the notice again the next night. Notices go out at most this many days
# before their date, so an older one can no longer be queued again.
DEDUPE_KEEP = timedelta(days=MAX_NOTICE_DAYS + 1)


def purge(db: Database, delivered_before: datetime) -> int:
    """Delete delivered rows older than the date; pending and dead rows are never purged,
    nor a notice's row while its notice could still be queued again."""
    with db.transaction() as session:
        return session.execute(
            delete(OutboxMessage).where(
                OutboxMessage.status == OutboxStatus.DELIVERED,
                OutboxMessage.delivered_at < delivered_before,
                OutboxMessage.dedupe_key.is_(None)
                | (OutboxMessage.created_at < datetime.now(UTC) - DEDUPE_KEEP),
            )
        ).rowcount


def last_delivered(db: Database) -> dict[str, datetime]:
    """When each integration's newest delivered row was delivered, for the console's dashboard.

    Walks each integration's rows newest first until a delivered one, which is near the top:
    a few rows per integration, not its delivered history."""
    with db.read() as session:
        integrations = session.execute(select(IntegrationRow.id, IntegrationRow.name)).all()
        latest: dict[str, datetime] = {}
        for integration_id, name in integrations:
            delivered_at = session.scalar(
                select(OutboxMessage.delivered_at)
                .where(
                    OutboxMessage.integration_id == integration_id,
                    OutboxMessage.status == OutboxStatus.DELIVERED,
                )
                .order_by(OutboxMessage.id.desc())
                .limit(1)
            )
            if delivered_at is not None:
                latest[name] = delivered_at
        return latest
