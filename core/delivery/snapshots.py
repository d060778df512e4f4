"""Contact snapshots built from the database at send time."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import BigInteger, Dialect, Select, String, bindparam, case, cast, func, select
from sqlalchemy.orm import Session

from pointbridge.contract.contact import Contact
from pointbridge.storage.models import Customer, LedgerEntry, PointLot
from pointbridge.storage.sql import among, processed_rows

# Core columns, not ORM objects or ORM-enabled selects: building a few hundred Customer
# objects per batch was the largest cost of a delivery call, and the ORM's row loading was
# still a third of a select's time.
_customer = Customer.__table__.c


def _next_expiry() -> tuple[Any, Any]:
    """The customer's earliest upcoming expiry date and the points expiring then, as
    subqueries of the customer row: computed by the database within the same statement."""
    customer = Customer.__table__
    first, due = PointLot.__table__.alias("first_lot").c, PointLot.__table__.alias("due_lot").c
    next_date = (
        select(func.min(first.expires_on))
        .where(
            first.customer_id == customer.c.id,
            first.remaining > 0,
            first.expires_on.is_not(None),
        )
        .correlate(customer)
        .scalar_subquery()
    )
    points = (
        select(cast(func.coalesce(func.sum(due.remaining), 0), BigInteger))
        .where(
            due.customer_id == customer.c.id,
            due.remaining > 0,
            due.expires_on == next_date,
        )
        .correlate(customer)
        .scalar_subquery()
    )
    return next_date.label("next_expiration_date"), points.label("next_expiration_points")


NEXT_EXPIRATION = _next_expiry()
# Summed from the ledger (its rows are never changed) when a snapshot is read, not kept in a
# column: the request path, the import and expiry stay as they are, and it cannot drift.
_credit = LedgerEntry.__table__.alias("credit").c
LIFETIME_POINTS = (
    select(cast(func.coalesce(func.sum(_credit.points), 0), BigInteger))
    .where(_credit.customer_id == _customer.id, _credit.points > 0)
    .correlate(Customer.__table__)
    .scalar_subquery()
    .label("lifetime_points")
)


def next_expirations(session: Session, customer_ids: Sequence[int]) -> dict[int, tuple[date, int]]:
    """Per customer with points that expire, the earliest expiry date and the points then."""
    rows = session.execute(
        select(_customer.id, *NEXT_EXPIRATION).where(among(_customer.id, customer_ids))
    )
    return {customer_id: (day, points) for customer_id, day, points in rows if day is not None}


def lifetime_points(session: Session, customer_ids: Sequence[int]) -> dict[int, int]:
    """Per customer, every point ever credited."""
    statement = select(_customer.id, LIFETIME_POINTS).where(among(_customer.id, customer_ids))
    return {customer_id: points for customer_id, points in session.execute(statement)}


# Contact's fields in its order, so a row is a contact's arguments: ``Contact(*row)``. Naming
# them in Python (Row attributes read by name, keyword arguments) took longer than the query.
# The referral link is built from the ``referral_prefix`` parameter of each execution.
SNAPSHOT_COLUMNS = (
    _customer.id,
    _customer.email,
    _customer.external_id,
    _customer.first_name,
    _customer.last_name,
    _customer.balance,
    # The PIN is how an unregistered customer claims their points; once registered it is
    # spent, and a platform's PIN field goes empty rather than keep mailing it.
    case((_customer.registered, None), else_=_customer.pin).label("pin"),
    _customer.registered,
    *NEXT_EXPIRATION,
    _customer.last_change_at,
    _customer.last_change_points,
    _customer.referral_code,
    (bindparam("referral_prefix", type_=String()) + _customer.referral_code).label("referral_link"),
    _customer.tier_id,
    _customer.tier_name,
    _customer.missions,
    _customer.rewards,
    _customer.referrals,
    _customer.marketing_consent,
    LIFETIME_POINTS,
    _customer.tier_expires_at,
    _customer.points_to_next_tier,
)


def _contacts(session: Session, statement: Select[Any], referral_prefix: str) -> list[Contact]:
    rows = session.execute(statement, {"referral_prefix": referral_prefix})
    return [Contact(*row) for row in rows]


def load_contacts(
    session: Session, customer_ids: Sequence[int], referral_prefix: str
) -> dict[int, Contact]:
    statement = select(*SNAPSHOT_COLUMNS).where(among(_customer.id, customer_ids))
    return {c.customer_id: c for c in _contacts(session, statement, referral_prefix)}


_PAGE = (
    select(*SNAPSHOT_COLUMNS)
    .where(_customer.id > bindparam("after"))
    .order_by(_customer.id)
    .limit(bindparam("limit"))
)


class _PageReader:
    """An export page's statement compiled once for a dialect, run on the driver's cursor.

    Through ``Session.execute`` a page cost more than twice the driver's own work: the
    statement's cache lookup and the result's processing of every value of every row. Here
    only the columns whose type converts a value (SQLite's booleans and dates, the UTC
    moments) go through their type's result processor, the same one SQLAlchemy runs."""

    def __init__(self, dialect: Dialect) -> None:
        self._compiled = _PAGE.compile(dialect=dialect)
        self._names = self._compiled.positiontup if self._compiled.positional else None
        self._processors = [
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in _PAGE.selected_columns
        ]

    def __call__(
        self, session: Session, after: int, limit: int, referral_prefix: str
    ) -> list[Contact]:
        values = self._compiled.construct_params(
            {"after": after, "limit": limit, "referral_prefix": referral_prefix}
        )
        parameters = values if self._names is None else [values[n] for n in self._names]
        # The session's connection, so the read is in the session's transaction (SQLite:
        # the read's snapshot) as any other statement of it.
        cursor = session.connection().connection.cursor()
        try:
            cursor.execute(self._compiled.string, parameters)
            rows = cursor.fetchall()
        finally:
            cursor.close()
        return [Contact(*row) for row in processed_rows(rows, self._processors)]


@functools.lru_cache(maxsize=16)
def _page_reader(dialect: Dialect) -> _PageReader:
    return _PageReader(dialect)


def contact_page(session: Session, after: int, limit: int, referral_prefix: str) -> list[Contact]:
    """The next ``limit`` customers with an id above ``after``, in id order (keyset paging)."""
    reader = _page_reader(session.get_bind().dialect)
    return reader(session, after, limit, referral_prefix)
