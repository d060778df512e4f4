"""Fixtures for the expiry tests: a frozen clock, a shop with integrations, and a contacts-only
platform (one without events) registered as a tiny in-test plugin."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from marshmallow import Schema
from sqlalchemy import func, select

from pointbridge import Contact, Event, InstallResult, Integration, ItemFailure, Platform, hookimpl
from pointbridge.loyalty.expiry import DayReport, Expiry
from pointbridge.services import Services
from pointbridge.storage.models import (
    Customer,
    LedgerEntry,
    OutboxKind,
    OutboxMessage,
    PointLot,
)

PRAGUE = ZoneInfo("Europe/Prague")
# A Monday; every test's clock starts here, just after the nightly run's hour in Prague.
DAY = date(2025, 3, 10)


class ContactsOnlyPlugin:
    """A platform that takes contact fields but no events (like dotmailer or Splio)."""

    def __init__(self) -> None:
        self.contacts: list[Contact] = []
        self.events: list[Event] = []

    @hookimpl
    def register_platforms(self, register: Callable[[Platform], None]) -> None:
        register(
            Platform(
                name="contacts-only",
                title="Contacts Only",
                settings_schema=Schema,
                capabilities=frozenset(),
                max_batch=500,
            )
        )

    @hookimpl
    def install(self, integration: Integration) -> InstallResult:
        return InstallResult(message="ok")

    @hookimpl
    def push_contact(
        self, integration: Integration, contacts: Sequence[Contact]
    ) -> list[ItemFailure]:
        self.contacts.extend(contacts)
        return []

    @hookimpl
    def emit_event(self, integration: Integration, events: Sequence[Event]) -> list[ItemFailure]:
        # The host must never call this for a platform without events; recording it makes a
        # test see it if it does.
        self.events.extend(events)
        return []


class Shop:
    """The host's services driven the way the nightly job and the REST API drive them."""

    def __init__(self, services: Services, tmp_path: Path) -> None:
        self.services = services
        self.db = services.db
        self.tmp_path = tmp_path

    # set-up ------------------------------------------------------------------------------

    def jsonl(self, name: str = "shop", notice_days: int | str | None = None) -> int:
        """An installed (active) jsonl integration; ``notice_days`` as an admin would set it."""
        values: dict[str, Any] = {"path": str(self.jsonl_path(name))}
        if notice_days is not None:
            values["expiry_notice_days"] = notice_days
        with self.db.transaction() as session:
            row = self.services.integrations.add(session, name, "jsonl", values)
            integration_id = row.id
        self.services.integrations.install(self.db, name)
        return integration_id

    def jsonl_path(self, name: str) -> Path:
        return self.tmp_path / f"{name}.jsonl"

    def jsonl_lines(self, name: str) -> list[dict[str, Any]]:
        path = self.jsonl_path(name)
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def customer(
        self, email: str, credits: Sequence[tuple[int, date | None]] = (), debit: int = 0
    ) -> int:
        """A customer with one lot per credit, then a debit (consumed earliest lot first)."""
        loyalty = self.services.loyalty
        with self.db.transaction() as session:
            customer = loyalty.create_customer(session, {"email": email})
            for n, (points, expires_on) in enumerate(credits):
                loyalty.post_transaction(
                    session, customer, points, "order", reference=f"o{n}", expires_on=expires_on
                )
            if debit:
                loyalty.post_transaction(session, customer, -debit, "reward")
            return customer.id

    def run(self, day: date, **options: Any) -> DayReport:
        return Expiry(self.db, self.services.loyalty).run_day(day, **options)

    def deliver(self) -> None:
        self.services.worker().drain(timeout=60)

    def forget_outbox(self) -> None:
        """Mark what set-up queued as delivered, so a test sees only what expiry adds."""
        with self.db.transaction() as session:
            session.execute(
                OutboxMessage.__table__.update().values(status="delivered")  # type: ignore[attr-defined]
            )

    # reading -----------------------------------------------------------------------------

    def balance(self, customer_id: int) -> int:
        with self.db.transaction() as session:
            customer = session.get(Customer, customer_id)
            assert customer is not None
            ledger_sum = session.scalar(
                select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(
                    LedgerEntry.customer_id == customer_id
                )
            )
            # The balance column is a cache of the ledger: they must agree after every run.
            assert customer.balance == ledger_sum
            return customer.balance

    def lots(self, customer_id: int) -> list[tuple[date | None, int]]:
        with self.db.transaction() as session:
            return [
                (row.expires_on, row.remaining)
                for row in session.execute(
                    select(PointLot.expires_on, PointLot.remaining)
                    .where(PointLot.customer_id == customer_id)
                    .order_by(PointLot.id)
                )
            ]

    def expirations(self, customer_id: int | None = None) -> list[tuple[int, int, str, str]]:
        """(customer, points, reference, created day) of every expiration entry."""
        with self.db.transaction() as session:
            query = (
                select(LedgerEntry)
                .where(LedgerEntry.reason == "expiration")
                .order_by(LedgerEntry.customer_id, LedgerEntry.id)
            )
            if customer_id is not None:
                query = query.where(LedgerEntry.customer_id == customer_id)
            return [
                (e.customer_id, e.points, e.reference or "", e.created_at.date().isoformat())
                for e in session.scalars(query)
            ]

    def outbox(
        self,
        *,
        event_type: str | None = None,
        kind: str | None = None,
        integration_id: int | None = None,
        pending_only: bool = True,
    ) -> list[OutboxMessage]:
        with self.db.transaction() as session:
            query = select(OutboxMessage).order_by(OutboxMessage.id)
            if pending_only:
                query = query.where(OutboxMessage.status == "pending")
            if event_type is not None:
                query = query.where(OutboxMessage.event_type == event_type)
            if kind is not None:
                query = query.where(OutboxMessage.kind == kind)
            if integration_id is not None:
                query = query.where(OutboxMessage.integration_id == integration_id)
            return list(session.scalars(query))

    def notices(self, integration_id: int | None = None) -> list[tuple[int, int, str, str]]:
        """(integration, customer, points, expires_on) of every credit-expires event queued."""
        return [
            (m.integration_id, m.customer_id, m.payload["points"], m.payload["expires_on"])
            for m in self.outbox(
                event_type="credit-expires", integration_id=integration_id, pending_only=False
            )
        ]

    def contact_updates(self, integration_id: int | None = None) -> list[int]:
        return [
            m.customer_id
            for m in self.outbox(kind=OutboxKind.CONTACT, integration_id=integration_id)
        ]

    def row_counts(self) -> dict[str, Any]:
        """Row counts of every table plus the sums an expiry would change."""
        from pointbridge.storage.models import Base

        with self.db.transaction() as session:
            counts: dict[str, Any] = {
                table.name: session.scalar(select(func.count()).select_from(table))
                for table in Base.metadata.sorted_tables
            }
            counts["sum(remaining)"] = session.scalar(select(func.sum(PointLot.remaining)))
            counts["sum(balance)"] = session.scalar(select(func.sum(Customer.balance)))
            return counts


@pytest.fixture
def clock() -> Iterator[time_machine.Coordinates]:
    """Frozen at 02:30 Prague time on DAY: the nightly run for DAY is due."""
    with time_machine.travel(datetime(2025, 3, 10, 2, 30, tzinfo=PRAGUE), tick=False) as frozen:
        yield frozen


@pytest.fixture
def shop(services: Services, tmp_path: Path, clock: time_machine.Coordinates) -> Shop:
    return Shop(services, tmp_path)


@pytest.fixture
def contacts_only(services: Services) -> ContactsOnlyPlugin:
    plugin = ContactsOnlyPlugin()
    services.host.register(plugin, "contacts-only")
    return plugin
