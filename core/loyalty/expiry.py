"""The nightly expiry job: expire due point lots, and warn customers N days ahead.

This module picks the days and pages; the debits themselves are the loyalty service's
(``Loyalty.expire_lots``), the one writer of ledger rows, balances and lots.

Both halves are set-based and paged (expiry by customer id, notices by expiry date then
customer id), so a million customers never sit in memory, and both are idempotent: the
expiration entry carries the reference ``expiration:<day>`` (unique per customer) and a notice
carries the outbox dedupe key ``credit-expires:<integration>:<customer>:<expiry date>``.
Running a day twice, on two machines at once, or again by hand changes nothing the second time.
Notices to a platform that declares a request budget are paced over ``NOTICE_SHARE`` of it
(each outbox row due at its turn), so contact updates made meanwhile are not queued behind a
night's worth of them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, String, cast, func, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from pointbridge.contract.events import EventType
from pointbridge.loyalty.ledger_sql import due_points
from pointbridge.loyalty.service import Loyalty
from pointbridge.storage.db import Database
from pointbridge.storage.models import (
    Customer,
    IntegrationRow,
    IntegrationStatus,
    JobRun,
    PointLot,
)

log = logging.getLogger(__name__)

JOB_NAME = "expiry"
MAX_CATCH_UP_DAYS = 60
SAMPLE_SIZE = 10
# The share of a platform's request budget a night's notices are paced to, from the run on.
# The rest is left to live changes: the worker sends what is due oldest first, so on a
# platform that takes one event per request (Ecomail: 1,000 a minute) a first night's
# 578,000 notices due at once would hold every later contact update back for 9.6 hours.
NOTICE_SHARE = 0.5


@dataclass
class DayReport:
    day: date
    dry_run: bool
    customers_expired: int = 0
    points_expired: int = 0
    notices: dict[str, int] = field(default_factory=dict)
    sample_expired: list[tuple[str, int]] = field(default_factory=list)
    sample_notices: list[tuple[str, str, int, date]] = field(default_factory=list)

    def summary(self) -> str:
        verb = "would expire" if self.dry_run else "expired"
        notices = ", ".join(f"{name}: {count}" for name, count in self.notices.items()) or "none"
        return (
            f"{self.day}: {verb} {self.points_expired} points of {self.customers_expired} "
            f"customers; {'would notify' if self.dry_run else 'notices'}: {notices}"
        )


def notice_key_parts(
    integration_id: int, expires_on: date, reminder: int | None
) -> tuple[str, str]:
    """A notice's dedupe key, before and after the customer id (the database puts the
    page's ids in). The first reminder keeps the key notices had before there were several,
    so an upgrade sends no notice again; each later one is keyed by its days ahead."""
    return (
        f"credit-expires:{integration_id}:",
        f":{expires_on.isoformat()}" + ("" if reminder is None else f":{reminder}d"),
    )


def reminder_windows(reminders: list[int]) -> list[tuple[int, int, int | None]]:
    """Per reminder (longest first): the days ahead it covers, ``(first, last)``, and its
    key suffix. ``[14, 3]``: expiries 4 to 14 days ahead get the 14-day reminder, 1 to 3 days
    ahead the 3-day one; a credit made 5 days before it expires still gets both in turn."""
    windows = []
    for n, days in enumerate(reminders):
        shorter = reminders[n + 1] if n + 1 < len(reminders) else 0
        windows.append((shorter + 1, days, None if n == 0 else days))
    return windows


@dataclass(frozen=True)
class Pacing:
    """When each of a night's notices for one integration becomes due: one every
    ``spacing`` from ``start``, in the order they are written (soonest expiry first)."""

    start: datetime
    spacing: timedelta


class Expiry:
    def __init__(self, db: Database, loyalty: Loyalty, *, page_size: int = 2000) -> None:
        self.db = db
        self.loyalty = loyalty
        self.outbox = loyalty.outbox
        self.page_size = page_size

    # the days to run ---------------------------------------------------------------------

    def last_run(self) -> date | None:
        with self.db.read() as session:
            return session.scalar(select(func.max(JobRun.day)).where(JobRun.job == JOB_NAME))

    def due_days(self, today: date) -> list[date]:
        """Today, plus every day missed since the last run (bounded)."""
        last = self.last_run()
        if last is None or last >= today:
            return [] if last == today else [today]
        first = max(last + timedelta(days=1), today - timedelta(days=MAX_CATCH_UP_DAYS - 1))
        return [first + timedelta(days=n) for n in range((today - first).days + 1)]

    def catch_up(self, today: date) -> list[DayReport]:
        return [self.run_day(day) for day in self.due_days(today)]

    def run_day(self, day: date, *, dry_run: bool = False) -> DayReport:
        report = DayReport(day, dry_run)
        self._expire(day, report)
        self._notify(day, report)
        if not dry_run:
            with self.db.read() as session:
                _insert_ignore(session, JobRun, [{"job": JOB_NAME, "day": day}], ["job", "day"])
            log.info(report.summary())
        return report

    # expiring ----------------------------------------------------------------------------

    def _due_customer_pages(self, day: date) -> Iterator[list[int]]:
        after = 0
        while True:
            with self.db.transaction() as session:
                page = list(
                    session.scalars(
                        select(PointLot.customer_id)
                        .where(
                            PointLot.remaining > 0,
                            PointLot.expires_on <= day,
                            PointLot.customer_id > after,
                        )
                        .group_by(PointLot.customer_id)
                        .order_by(PointLot.customer_id)
                        .limit(self.page_size)
                    )
                )
            if not page:
                return
            yield page
            after = page[-1]

    def _expire(self, day: date, report: DayReport) -> None:
        for page in self._due_customer_pages(day):
            with self.db.transaction() as session:
                if report.dry_run:
                    due = due_points(session, page, day)
                else:
                    due = self.loyalty.expire_lots(session, page, day)
                report.customers_expired += len(due)
                report.points_expired += sum(due.values())
                if len(report.sample_expired) < SAMPLE_SIZE and due:
                    emails = dict(
                        session.execute(
                            select(Customer.id, Customer.email).where(
                                Customer.id.in_(list(due)[:SAMPLE_SIZE])
                            )
                        ).all()
                    )
                    report.sample_expired.extend(
                        (emails[c], points) for c, points in list(due.items())[:SAMPLE_SIZE]
                    )
                    del report.sample_expired[SAMPLE_SIZE:]

    # notices -----------------------------------------------------------------------------

    def _notify(self, day: date, report: DayReport) -> None:
        with self.db.transaction() as session:
            integrations = session.execute(
                select(
                    IntegrationRow.id,
                    IntegrationRow.name,
                    IntegrationRow.expiry_notice_days,
                    IntegrationRow.expiry_reminders,
                    IntegrationRow.platform,
                )
                .where(
                    IntegrationRow.status != IntegrationStatus.DISABLED,
                    IntegrationRow.expiry_notice_days.is_not(None),
                )
                .order_by(IntegrationRow.id)
            ).all()
            # A platform without events, or an integration that switched reminders off
            # (disabled_events), has nowhere to put a notice: the outbox would drop it, so
            # counting it would report (and dry-run promise) notices that never go out.
            takes_reminders = {
                t.integration_id
                for t in self.outbox.targets(session)
                if t.takes(EventType.CREDIT_EXPIRES)
            }
        start = datetime.now(UTC)
        for integration_id, name, days, reminders, platform in integrations:
            if integration_id not in takes_reminders:
                continue
            pacing = self._pacing(platform, start)
            report.notices[name] = 0
            for first, last, reminder in reminder_windows(reminders or [days]):
                sent = self._notify_integration(
                    integration_id, name, day, (first, last, reminder), report, pacing
                )
                report.notices[name] += sent
                if pacing is not None:
                    # The next reminder's notices queue behind this one's, not beside them.
                    pacing = Pacing(pacing.start + pacing.spacing * sent, pacing.spacing)

    def _pacing(self, platform_name: str, start: datetime) -> Pacing | None:
        """``NOTICE_SHARE`` of the platform's declared budget; None (all due at once) for a
        platform without one, or whose plugin this process has not loaded."""
        registered = self.outbox.host.platforms.get(platform_name)
        per_second = None if registered is None else registered.platform.events_per_second()
        if per_second is None:
            return None
        return Pacing(start, timedelta(seconds=1 / (per_second * NOTICE_SHARE)))

    def _notify_integration(
        self,
        integration_id: int,
        name: str,
        day: date,
        window: tuple[int, int, int | None],
        report: DayReport,
        pacing: Pacing | None,
    ) -> int:
        """One reminder's notices: the expiries ``window`` (first, last) days ahead."""
        first, last, reminder = window
        count = 0
        # One date at a time: (expires_on = d, customer_id > after) is a seek along the partial
        # index ix_lot_expiring, so a page costs its own rows. Paging the whole window by
        # customer made every page scan and sort all N days' open lots again: quadratic, 95 s
        # of a million customers' night.
        for offset in range(first, last + 1):
            expires_on = day + timedelta(days=offset)
            prefix, suffix = notice_key_parts(integration_id, expires_on, reminder)
            after = 0
            while True:
                with self.db.transaction() as session:
                    page = _due_on(expires_on, after, None).limit(self.page_size)
                    rows = session.execute(page).all()
                    if not rows:
                        break
                    # The outbox writes (or counts) the page's notices again from the lots,
                    # in the database: the rows here only bound the page and name a sample.
                    source = _due_on(expires_on, after, rows[-1][0]).add_columns(
                        _json_object(
                            session,
                            points=func.sum(PointLot.remaining),
                            expires_on=cast(literal(expires_on.isoformat()), String),
                            # The days left, not the reminder's: one sent late (a credit made
                            # 10 days ahead, reminders 14,3) says 10.
                            days_before=literal(offset, Integer),
                        ).label("payload"),
                        (
                            literal(prefix) + cast(PointLot.customer_id, String) + literal(suffix)
                        ).label("dedupe_key"),
                    )
                    after = rows[-1][0]
                    fresh = self.outbox.keyed_events(
                        session,
                        EventType.CREDIT_EXPIRES,
                        integration_id,
                        source,
                        paced=None
                        if pacing is None
                        else (pacing.start + pacing.spacing * count, pacing.spacing),
                        dry_run=report.dry_run,
                    )
                    count += len(fresh)
                    if len(report.sample_notices) < SAMPLE_SIZE and fresh:
                        points = dict(rows)
                        self._sample_notices(
                            session,
                            name,
                            [(c, int(points[c]), expires_on) for c in fresh[:SAMPLE_SIZE]],
                            report,
                        )
        return count

    def _sample_notices(
        self,
        session: Session,
        name: str,
        fresh: list[tuple[int, int, date]],
        report: DayReport,
    ) -> None:
        emails = dict(
            session.execute(
                select(Customer.id, Customer.email).where(Customer.id.in_([c for c, _, _ in fresh]))
            ).all()
        )
        for customer_id, points, expires_on in fresh[: SAMPLE_SIZE - len(report.sample_notices)]:
            report.sample_notices.append((name, emails[customer_id], points, expires_on))


def _due_on(expires_on: date, after: int, last: int | None) -> Select[Any]:
    """The customers with open lots expiring on ``expires_on``, after the id ``after`` (up
    to ``last``), and the points: a seek along ix_lot_expiring."""
    bounds = [PointLot.customer_id > after]
    if last is not None:
        bounds.append(PointLot.customer_id <= last)
    return (
        select(PointLot.customer_id, func.sum(PointLot.remaining))
        .where(PointLot.remaining > 0, PointLot.expires_on == expires_on, *bounds)
        .group_by(PointLot.customer_id)
        .order_by(PointLot.customer_id)
    )


def _json_object(session: Session, **fields: ColumnElement[Any]) -> ColumnElement[Any]:
    build = (
        func.json_build_object
        if session.get_bind().dialect.name == "postgresql"
        else func.json_object
    )
    return build(
        *[part for name, value in fields.items() for part in (cast(literal(name), String), value)]
    )


def _insert_ignore(
    session: Session, model: type[Any], values: list[dict[str, Any]], keys: list[str]
) -> None:
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(model).on_conflict_do_nothing(index_elements=keys), values)
