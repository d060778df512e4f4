"""Writing outbox rows in the caller's transaction, and waking the workers after commit."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    String,
    event,
    func,
    literal,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from pointbridge.contract.events import EventType
from pointbridge.plugins import PluginHost
from pointbridge.storage.models import (
    IntegrationRow,
    IntegrationStatus,
    OutboxKind,
    OutboxMessage,
    OutboxStatus,
    UTCDateTime,
    utcnow,
)
from pointbridge.storage.sql import insert_per_id

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_PENDING_WAKE = "pointbridge.delivery.outbox.wake"
_TARGETS = "pointbridge.delivery.outbox.targets"


# Built once: on the request path, building a statement costs more CPU than running it.
_integration = IntegrationRow.__table__.c
_TARGETS_QUERY = select(
    _integration.id,
    _integration.platform,
    _integration.settings,
    _integration.disabled_events,
    _integration.reward_thresholds,
).where(_integration.status != IntegrationStatus.DISABLED)
_INSERT = {
    name: insert(OutboxMessage.__table__).on_conflict_do_nothing(index_elements=["dedupe_key"])
    for name, insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}


@dataclass(frozen=True, slots=True)
class Target:
    integration_id: int
    takes_events: bool
    # The event types the admin switched off for this integration.
    events_off: frozenset[str] = frozenset()
    reward_thresholds: tuple[int, ...] = ()

    def takes(self, event_type: EventType) -> bool:
        return self.takes_events and event_type not in self.events_off


class Outbox:
    """Enqueues contact updates and events for every integration that is not disabled."""

    def __init__(self, host: PluginHost) -> None:
        self.host = host
        self.wakeup = threading.Event()

    def watch(self, sessions: sessionmaker[Session]) -> None:
        """Wake the worker when a transaction that wrote outbox rows commits."""

        @event.listens_for(sessions, "after_commit")
        def _after_commit(session: Session) -> None:
            session.info.pop(_TARGETS, None)
            if session.info.pop(_PENDING_WAKE, False):
                self.wake()

        @event.listens_for(sessions, "after_rollback")
        def _after_rollback(session: Session) -> None:
            session.info.pop(_TARGETS, None)
            session.info.pop(_PENDING_WAKE, None)

        @event.listens_for(sessions, "before_flush")
        def _before_flush(session: Session, *_: Any) -> None:
            # An integration added, disabled or changed in this transaction changes the targets.
            touched = (*session.new, *session.dirty, *session.deleted)
            if any(isinstance(obj, IntegrationRow) for obj in touched):
                session.info.pop(_TARGETS, None)

    def wake(self) -> None:
        self.wakeup.set()

    def targets(self, session: Session) -> list[Target]:
        """The integrations to queue for, looked up once per transaction."""
        cached = session.info.get(_TARGETS)
        if cached is None:
            cached = session.info[_TARGETS] = self._load_targets(session)
        return cached

    def _load_targets(self, session: Session) -> list[Target]:
        rows = session.execute(_TARGETS_QUERY)
        return [
            Target(
                row.id,
                self._takes_events(row.platform, row.settings or {}),
                frozenset(row.disabled_events or ()),
                tuple(row.reward_thresholds or ()),
            )
            for row in rows
        ]

    def _takes_events(self, platform_name: str, settings: Mapping[str, Any]) -> bool:
        registered = self.host.platforms.get(platform_name)
        # A platform whose plugin is not loaded in this process keeps its events: the worker
        # that has the plugin delivers them.
        return registered is None or registered.platform.takes_events(settings)

    def contact_changed(self, session: Session, customer_id: int) -> None:
        # One plain INSERT: COPY's extra round trip costs a single row more than it saves.
        self._add(session, _contact_rows(self.targets(session), [customer_id]))

    def contacts_changed(
        self,
        session: Session,
        customer_ids: Sequence[int],
        integration_ids: Iterable[int] | None = None,
    ) -> None:
        """Enqueue a contact update of each customer for every integration (or only those
        in ``integration_ids``).

        The rows go in by one statement an integration, the customer ids as one value
        (``insert_per_id``; COPY on PostgreSQL): an import or an expiry run queues them by the
        thousand, and SQLAlchemy's executemany of a dict a row cost more than the database's
        insert."""
        targets = self.targets(session)
        if integration_ids is not None:
            wanted = set(integration_ids)
            targets = [t for t in targets if t.integration_id in wanted]
        if not targets or not customer_ids:
            return
        now = utcnow()
        for target in targets:
            insert_per_id(
                session.connection(),
                OutboxMessage.__table__,
                "customer_id",
                customer_ids,
                # Every column a contact update sets, as the model's defaults would.
                constants={
                    "integration_id": target.integration_id,
                    "kind": OutboxKind.CONTACT.value,
                    "payload": {},
                    "status": OutboxStatus.PENDING.value,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                },
            )
        self._queued(session)

    def changed(
        self,
        session: Session,
        customer_id: int,
        event_type: EventType,
        data: Mapping[str, Any],
    ) -> None:
        """``contact_changed`` and ``event`` in one insert: every row the transaction queues
        for a change to one customer."""
        targets = self.targets(session)
        self._add(
            session,
            _contact_rows(targets, [customer_id])
            + _event_rows(
                [t for t in targets if t.takes(event_type)], event_type, [(customer_id, data)]
            ),
        )

    def event(
        self,
        session: Session,
        customer_id: int,
        event_type: EventType,
        data: Mapping[str, Any],
    ) -> None:
        """Enqueue an event for every integration that takes events."""
        self.events(session, event_type, [(customer_id, data)])

    def events(
        self,
        session: Session,
        event_type: EventType,
        items: Sequence[tuple[int, Mapping[str, Any]]],
        *,
        dedupe_key: Callable[[int, int, Mapping[str, Any]], str] | None = None,
        integration_ids: Iterable[int] | None = None,
        not_before: Sequence[datetime] | None = None,
    ) -> None:
        """Enqueue ``(customer_id, data)`` events for every integration taking events.

        ``integration_ids`` narrows the integrations; with ``dedupe_key`` (integration id,
        customer id, data -> key) an event whose key was enqueued before is skipped;
        ``not_before`` (a time per item) holds each event back until then, which paces a job's
        many events so that changes queued after them need not wait behind them all.
        """
        wanted = None if integration_ids is None else set(integration_ids)
        targets = [
            t
            for t in self.targets(session)
            if t.takes(event_type) and (wanted is None or t.integration_id in wanted)
        ]
        self._add(session, _event_rows(targets, event_type, items, dedupe_key, not_before))

    def keyed_events(
        self,
        session: Session,
        event_type: EventType,
        integration_id: int,
        source: Select[Any],
        *,
        paced: tuple[datetime, timedelta] | None = None,
        dry_run: bool = False,
    ) -> list[int]:
        """Enqueue for one integration an event a row of ``source`` (its columns
        ``customer_id``, ``payload`` and ``dedupe_key``) whose key was not enqueued before, and
        return their customers, in customer order (with ``dry_run``: only return them).

        One statement, all in the database: a job's events by the thousand cost no Python a
        row, nor a read of the keys already sent. ``paced`` (start, spacing) holds the n-th
        new event back until ``start + spacing * n`` (n from 0, in customer order)."""
        dialect = session.get_bind().dialect.name
        rows = source.subquery("source")
        outbox = OutboxMessage.__table__
        # A scalar subquery, not NOT EXISTS: PostgreSQL made NOT EXISTS a hash anti join that
        # read the whole outbox for every page; a subquery stays a probe of the key's index.
        fresh = (
            select(outbox.c.id)
            .where(outbox.c.dedupe_key == rows.c.dedupe_key)
            .scalar_subquery()
            .is_(None)
        )
        if dry_run:
            picked = select(rows.c.customer_id).where(fresh).order_by(rows.c.customer_id)
            return list(session.scalars(picked))
        now = utcnow()
        turn = func.row_number().over(order_by=rows.c.customer_id) - 1
        values = {
            "integration_id": literal(integration_id, BigInteger),
            "customer_id": rows.c.customer_id,
            "kind": literal(OutboxKind.EVENT.value),
            "event_type": literal(str(event_type)),
            "payload": rows.c.payload,
            "dedupe_key": rows.c.dedupe_key,
            "status": literal(OutboxStatus.PENDING.value),
            "attempts": literal(0),
            "next_attempt_at": (
                literal(now, UTCDateTime) if paced is None else _paced_time(dialect, *paced, turn)
            ),
            "created_at": literal(now, UTCDateTime),
        }
        insert = (pg_insert if dialect == "postgresql" else sqlite_insert)(outbox)
        statement = (
            insert.from_select(list(values), select(*values.values()).where(fresh))
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(outbox.c.customer_id)
        )
        if dialect == "postgresql":
            # Planned for the outbox as it is at each page, never from a cached plan: one made
            # while the outbox was small (a night's first pages) probes each key by reading the
            # whole table, which the night then grows by the hundred thousand.
            session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
        queued = sorted(session.scalars(statement))
        if queued:
            self._queued(session)
        return queued

    def _add(self, session: Session, values: list[dict[str, Any]]) -> None:
        if not values:
            return
        session.execute(_INSERT[session.get_bind().dialect.name], values)
        self._queued(session)

    @staticmethod
    def _queued(session: Session) -> None:
        """Wake this process's worker when the transaction commits. Workers in other
        processes are woken by PostgreSQL itself: a trigger on the outbox (migration 0014)
        notifies them from within the INSERT, a round trip fewer per transaction."""
        session.info[_PENDING_WAKE] = True


def _paced_time(
    dialect: str, start: datetime, spacing: timedelta, turn: ColumnElement[int]
) -> ColumnElement[Any]:
    """``start + spacing * turn`` in SQL, to the microsecond as Python computes it."""
    if dialect == "postgresql":
        return literal(start, UTCDateTime) + turn * literal(spacing)
    # SQLite keeps a datetime as text in SQLAlchemy's format: built from whole microseconds.
    micros = (
        literal((start - _EPOCH) // _MICROSECOND, BigInteger)
        + literal(spacing // _MICROSECOND, BigInteger) * turn
    )
    seconds = func.strftime("%Y-%m-%d %H:%M:%S", micros // 1_000_000, "unixepoch", type_=String)
    return seconds + func.printf(".%06d", micros % 1_000_000, type_=String)


def _contact_rows(targets: Sequence[Target], customer_ids: Sequence[int]) -> list[dict[str, Any]]:
    return [
        _row(t.integration_id, c, OutboxKind.CONTACT, None, {})
        for t in targets
        for c in customer_ids
    ]


def _event_rows(
    targets: Sequence[Target],
    event_type: EventType,
    items: Sequence[tuple[int, Mapping[str, Any]]],
    dedupe_key: Callable[[int, int, Mapping[str, Any]], str] | None = None,
    not_before: Sequence[datetime] | None = None,
) -> list[dict[str, Any]]:
    return [
        _row(
            t.integration_id,
            customer_id,
            OutboxKind.EVENT,
            str(event_type),
            dict(data),
            dedupe_key(t.integration_id, customer_id, data) if dedupe_key else None,
        )
        | ({} if not_before is None else {"next_attempt_at": not_before[n]})
        for t in targets
        for n, (customer_id, data) in enumerate(items)
    ]


def _row(
    integration_id: int,
    customer_id: int,
    kind: OutboxKind,
    event_type: str | None,
    payload: dict[str, Any],
    dedupe_key: str | None = None,
) -> dict[str, Any]:
    """An outbox row with every column a caller may set: rows inserted together must name
    the same columns."""
    return {
        "integration_id": integration_id,
        "customer_id": customer_id,
        "kind": kind,
        "event_type": event_type,
        "payload": payload,
        "dedupe_key": dedupe_key,
    }
