"""The statements of the points path, built once (building one costs more CPU than the
database takes to run it), and the ledger entry they write.

The points path writes through the tables, not the ORM: a handful of statements per
transaction, and no objects to load, track and flush.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, exists, func, insert, select, true, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from pointbridge.storage.models import Customer, LedgerEntry, PointLot

CUSTOMERS = Customer.__table__
LEDGER = LedgerEntry.__table__
LOTS = PointLot.__table__


@dataclass(frozen=True, slots=True)
class Entry:
    """A ledger entry as written (or found again, for a replayed reference) and the
    customer's balance after it."""

    id: int
    customer_id: int
    points: int
    reason: str
    reference: str | None
    expires_on: date | None
    created_at: datetime
    balance: int


ENTRY_COLUMNS = (
    LEDGER.c.id,
    LEDGER.c.customer_id,
    LEDGER.c.points,
    LEDGER.c.reason,
    LEDGER.c.reference,
    LEDGER.c.expires_on,
    LEDGER.c.created_at,
)


_ENTRY_FROM_CUSTOMER = select(
    CUSTOMERS.c.id,
    bindparam("points", type_=LEDGER.c.points.type),
    bindparam("reason", type_=LEDGER.c.reason.type),
    bindparam("reference", type_=LEDGER.c.reference.type),
    bindparam("expires_on", type_=LEDGER.c.expires_on.type),
    bindparam("now", type_=LEDGER.c.created_at.type),
).where(CUSTOMERS.c.id == bindparam("customer_id"))
# ``INSERT … SELECT`` from the customer row: no row is written for a customer that does not
# exist, nor for a reference the customer has used, and the id of a written one comes back.
INSERT_ENTRY = {
    name: dialect_insert(LEDGER)
    .from_select([column.key for column in ENTRY_COLUMNS[1:]], _ENTRY_FROM_CUSTOMER)
    .on_conflict_do_nothing(index_elements=["customer_id", "reference"])
    .returning(LEDGER.c.id)
    for name, dialect_insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}
ADD_TO_BALANCE = (
    update(CUSTOMERS)
    .where(
        CUSTOMERS.c.id == bindparam("customer_id"),
        CUSTOMERS.c.balance + bindparam("points") >= 0,
    )
    .values(
        balance=CUSTOMERS.c.balance + bindparam("points"),
        last_change_at=bindparam("now"),
        last_change_points=bindparam("points"),
        updated_at=bindparam("now"),
    )
    .returning(CUSTOMERS.c.balance)
)
INSERT_LOT = insert(LOTS)


def _entry_and_balance() -> Any:
    """PostgreSQL: a transaction's ledger row, its balance and (a credit's) lot in one
    statement (data-modifying CTEs), one round trip where three were a third of a request's.
    It returns the entry's id and the new balance; no row when the entry was not written (a
    used reference, or no such customer), which then changes nothing; a balance of None when
    the guard refused a debit, whose entry the caller then removes. The balance's UPDATE waits
    for the entry, whose rows it reads, and takes the customer's lock, rechecking its guard on
    the balance another transaction left, as ``ADD_TO_BALANCE`` does."""
    entry = INSERT_ENTRY["postgresql"].cte("entry")
    moved = ADD_TO_BALANCE.where(exists(select(entry.c.id))).cte("moved")
    points = bindparam("points", type_=LOTS.c.points.type)
    lot = (
        insert(LOTS)
        .from_select(
            ["customer_id", "entry_id", "points", "remaining", "expires_on"],
            select(
                bindparam("customer_id", type_=LOTS.c.customer_id.type),
                entry.c.id,
                points,
                points,
                bindparam("expires_on", type_=LOTS.c.expires_on.type),
            )
            .select_from(entry)
            .where(points > 0),
        )
        .cte("lot")
    )
    # The lot is no column of the answer: add_cte renders it all the same, and PostgreSQL runs
    # every data-modifying CTE to completion whether the query reads it or not.
    return (
        select(entry.c.id, moved.c.balance).select_from(entry.outerjoin(moved, true())).add_cte(lot)
    )


ENTRY_AND_BALANCE = _entry_and_balance()
# The set-based debits (``post_debits``, ``expire_lots``): one statement per step for a page of
# customers, each entry written under the job's reference and read back by reference.
LOCK_CUSTOMERS = (
    select(CUSTOMERS.c.id, CUSTOMERS.c.balance)
    .where(CUSTOMERS.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(CUSTOMERS.c.id)
    .with_for_update()
)
_DUE_POINTS = (
    select(LOTS.c.customer_id, func.sum(LOTS.c.remaining))
    .where(
        LOTS.c.customer_id.in_(bindparam("ids", expanding=True)),
        LOTS.c.remaining > 0,
        LOTS.c.expires_on <= bindparam("day", type_=LOTS.c.expires_on.type),
    )
    .group_by(LOTS.c.customer_id)
)
INSERT_ENTRIES = {
    name: dialect_insert(LEDGER)
    .on_conflict_do_nothing(index_elements=["customer_id", "reference"])
    .returning(LEDGER.c.customer_id)
    for name, dialect_insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}
TAKE_ENTRIES_FROM_BALANCES = (
    update(CUSTOMERS)
    .where(
        # The ids on the entries' side, and only there: PostgreSQL then reads the entries by
        # their (customer, reference) index and each customer by its key. Without them it
        # scanned the whole ledger for the reference; with them on the customers' side as
        # well, it checked every customer against the whole list again.
        LEDGER.c.customer_id.in_(bindparam("ids", expanding=True)),
        LEDGER.c.reference == bindparam("reference"),
        LEDGER.c.customer_id == CUSTOMERS.c.id,
        CUSTOMERS.c.balance + LEDGER.c.points >= 0,
    )
    .values(
        balance=CUSTOMERS.c.balance + LEDGER.c.points,
        last_change_at=LEDGER.c.created_at,
        last_change_points=LEDGER.c.points,
    )
    .returning(CUSTOMERS.c.id, CUSTOMERS.c.balance)
)


def _still_wanted(open_lot: Any, debit: Any) -> Any:
    """Per open lot, the points its customer's ``debit`` still wants when this lot's turn
    comes: the debit less every earlier lot, earliest expiry first and lots without expiry
    last."""
    return (
        debit
        - func.sum(open_lot.c.remaining).over(
            partition_by=open_lot.c.customer_id,
            order_by=(open_lot.c.expires_on.is_(None), open_lot.c.expires_on, open_lot.c.id),
        )
        + open_lot.c.remaining
    ).label("wanted")


def _take_from_lots(wanted: Any) -> Any:
    """The UPDATE that takes from each lot of ``wanted`` (id, wanted) what is wanted of it."""
    return (
        update(LOTS)
        .where(LOTS.c.id == wanted.c.id, wanted.c.wanted > 0)
        .values(
            remaining=case(
                (wanted.c.wanted >= LOTS.c.remaining, 0), else_=LOTS.c.remaining - wanted.c.wanted
            )
        )
    )


_open = LOTS.alias("open_lot")
# The debits of a page of customers, each under the job's reference.
TAKE_ENTRIES_FROM_LOTS = _take_from_lots(
    select(_open.c.id, _still_wanted(_open, -LEDGER.c.points))
    .join_from(
        _open,
        LEDGER,
        and_(
            LEDGER.c.customer_id == _open.c.customer_id,
            LEDGER.c.reference == bindparam("reference"),
        ),
    )
    # The ids on the entries' side only, as in ``TAKE_ENTRIES_FROM_BALANCES``.
    .where(LEDGER.c.customer_id.in_(bindparam("ids", expanding=True)), _open.c.remaining > 0)
    .subquery("wanted")
)
# One customer's debit: one statement, where reading the lots and writing each was two. Run
# under the customer's lock (the balance's UPDATE), it reads the lots as they are then.
TAKE_DEBIT_FROM_LOTS = _take_from_lots(
    select(_open.c.id, _still_wanted(_open, bindparam("debit", type_=LOTS.c.points.type)))
    # Not "customer_id": an UPDATE of the lots keeps its columns' names for their new values.
    .where(_open.c.customer_id == bindparam("debtor"), _open.c.remaining > 0)
    .subquery("wanted")
)


def due_points(session: Session, customer_ids: Sequence[int], day: date) -> dict[int, int]:
    """Points left in the lots of ``customer_ids`` due on or before ``day``, per customer
    that has any."""
    rows = session.execute(_DUE_POINTS, {"ids": list(customer_ids), "day": day})
    return {customer_id: int(points) for customer_id, points in rows if points}


def consume_lots(session: Session, customer_id: int, points: int) -> None:
    """Take ``points`` from the lots that expire first; lots without expiry go last."""
    session.connection().execute(TAKE_DEBIT_FROM_LOTS, {"debtor": customer_id, "debit": points})
