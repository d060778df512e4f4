"""Checks that every balance is what the ledger and the open lots say it is.

A balance is kept beside the ledger so snapshots never sum a ledger; this is the audit that
the two never drift: balance == sum of the customer's ledger entries == sum of the points
left in their lots, and never below zero. It reads in keyset pages of customers, one
statement each (one snapshot per page), so it runs on a million customers in constant memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import func, select

from pointbridge.storage.db import Database
from pointbridge.storage.models import Customer, LedgerEntry, PointLot

PAGE_SIZE = 5_000


@dataclass(frozen=True, slots=True)
class Mismatch:
    customer_id: int
    email: str
    balance: int
    ledger: int
    lots: int

    def describe(self) -> str:
        return (
            f"customer {self.customer_id} ({self.email}): balance {self.balance}, "
            f"ledger sums to {self.ledger}, lots hold {self.lots}"
        )


@dataclass
class AuditReport:
    customers: int = 0
    mismatches: int = 0


def audit_balances(
    db: Database, report: AuditReport, page_size: int = PAGE_SIZE
) -> Iterator[Mismatch]:
    """Yield every customer whose balance disagrees with the ledger or the lots (or is
    negative), counting what was checked in ``report``."""
    ledger = (
        select(func.coalesce(func.sum(LedgerEntry.points), 0))
        .where(LedgerEntry.customer_id == Customer.id)
        .scalar_subquery()
    )
    lots = (
        select(func.coalesce(func.sum(PointLot.remaining), 0))
        .where(PointLot.customer_id == Customer.id)
        .scalar_subquery()
    )
    after = 0
    while True:
        with db.read() as session:
            ids = select(Customer.id).where(Customer.id > after).order_by(Customer.id)
            page = ids.limit(page_size).subquery()
            rows = session.execute(
                select(Customer.id, Customer.email, Customer.balance, ledger, lots)
                .where(Customer.id.in_(select(page.c.id)))
                .order_by(Customer.id)
            ).all()
        report.customers += len(rows)
        for customer_id, email, balance, ledger_sum, lot_sum in rows:
            if balance < 0 or balance != ledger_sum or balance != lot_sum:
                report.mismatches += 1
                yield Mismatch(customer_id, email, balance, int(ledger_sum), int(lot_sum))
        if len(rows) < page_size:
            return
        after = rows[-1][0]
