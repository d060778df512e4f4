"""The next call to make for an integration, read from the database: live contact updates
first (coalesced: each customer's latest state once, covering every pending update), then live
events, then the running export's next page. A customer in a running call is left out, so no
call overtakes an older one for the same customer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pointbridge.contract.contact import Contact
from pointbridge.contract.events import Event, EventType
from pointbridge.contract.platform import Integration, Platform
from pointbridge.delivery.claims import CLAIMS, COVERED_CONTACTS
from pointbridge.delivery.export_pages import ExportRound, Page
from pointbridge.storage.db import Database
from pointbridge.storage.models import Customer, OutboxKind, OutboxMessage
from pointbridge.storage.sql import among


@dataclass
class Call:
    """One hook call, read from the database and ready to send."""

    hook: str
    kind: str
    kwargs: dict[str, Any]
    rows_by_key: dict[int, list[int]]  # Contact.customer_id or Event.id -> outbox rows
    created: dict[int, datetime]  # outbox row -> created_at
    customers: frozenset[int]
    page: Page | None = None  # an export page: no outbox rows, recorded by the export


class CallReader:
    """Reads an integration's next call; one per worker."""

    def __init__(self, db: Database, referral_prefix: str) -> None:
        self.db = db
        self.referral_prefix = referral_prefix

    def next_call(
        self,
        integration: Integration,
        platform: Platform,
        running: Iterable[Call],
        export: ExportRound,
        *,
        events_first: bool = False,
    ) -> Call | None:
        """The next call to make: due contact updates and due events, read from the database
        in one transaction (contacts first unless ``events_first``), then the export's next
        page; None if nothing is due for customers outside the ``running`` calls.

        The two kinds are claimed apart: claiming the oldest due rows of both together found
        no contact update behind a first night's thousands of due expiry notices. The worker
        alternates them while both are due, so neither waits behind a stream of the other;
        an event still waits until its customer's earlier contact update is gone.
        """
        busy = frozenset().union(*(call.customers for call in running))
        parameters = {
            "integration_id": integration.id,
            "now": datetime.now(UTC),
            "busy": busy,
        }
        order = (OutboxKind.EVENT, OutboxKind.CONTACT)
        with self.db.read() as session:
            for kind in order if events_first else reversed(order):
                limit = (
                    platform.max_batch if kind == OutboxKind.CONTACT else platform.max_event_batch
                )
                rows = session.execute(CLAIMS[kind][False], {**parameters, "limit": limit}).all()
                if any(customer_id in busy for _, customer_id in rows):
                    # Only then can the claim past the running calls' customers differ: when
                    # none of the first rows is theirs, those rows are its answer too. An
                    # export's pages find nothing due, and binding the thousands of customers
                    # in flight cost PostgreSQL a third of reading the page.
                    rows = session.execute(CLAIMS[kind][True], {**parameters, "limit": limit}).all()
                if not rows:
                    continue
                if kind == OutboxKind.EVENT:
                    return self._events(session, [row_id for row_id, _ in rows])
                customer_ids = list(dict.fromkeys(customer_id for _, customer_id in rows))
                return self._contacts(session, integration, customer_ids)
        page = export.next_page(platform.max_batch, busy)
        if page is None:
            return None
        return Call(
            "push_contact",
            OutboxKind.CONTACT,
            {"contacts": page.contacts},
            {},
            {},
            page.customer_ids,
            page,
        )

    def _contacts(
        self, session: Session, integration: Integration, customer_ids: Sequence[int]
    ) -> Call:
        # Every pending update of these customers, each with its customer's current fields,
        # in one read: the snapshot covers every update read with it. That is the
        # coalescing, latest state wins.
        covered = session.execute(
            COVERED_CONTACTS,
            {
                "integration_id": integration.id,
                "customer_ids": customer_ids,
                "referral_prefix": self.referral_prefix,
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
        return Call(
            "push_contact",
            OutboxKind.CONTACT,
            {"contacts": items},
            rows_by_key,
            created,
            frozenset(customer_ids),
        )

    def _events(self, session: Session, event_ids: Sequence[int]) -> Call:
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
        return Call(
            "emit_event",
            OutboxKind.EVENT,
            {"events": events},
            {m.id: [m.id] for m in messages},
            {m.id: m.created_at for m in messages},
            frozenset(m.customer_id for m in messages),
        )
