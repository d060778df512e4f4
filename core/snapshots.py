"""Contact snapshots built from the database at send time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import BigInteger, Select, cast, func, select
from sqlalchemy.orm import Session

from core.contact import Contact
from core.models import Customer, PointLot
from core.sql import among

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


def next_expirations(session: Session, customer_ids: Sequence[int]) -> dict[int, tuple[date, int]]:
    """Per customer with points that expire, the earliest expiry date and the points then."""
    rows = session.execute(
        select(_customer.id, *NEXT_EXPIRATION).where(among(_customer.id, customer_ids))
    )
    return {customer_id: (day, points) for customer_id, day, points in rows if day is not None}


# Plain rows of just these columns, unpacked by ``to_contact`` in this order.
SNAPSHOT_COLUMNS = (
    _customer.id,
    _customer.email,
    _customer.external_id,
    _customer.first_name,
    _customer.last_name,
    _customer.balance,
    _customer.pin,
    _customer.registered,
    *NEXT_EXPIRATION,
    _customer.last_change_at,
    _customer.last_change_points,
    _customer.referral_code,
    _customer.tier_id,
    _customer.tier_name,
    _customer.missions,
    _customer.rewards,
    _customer.referrals,
)


def to_contact(customer: Sequence[Any], referral_prefix: str) -> Contact:
    """The contact of a row of ``SNAPSHOT_COLUMNS``."""
    # Unpacked and passed by position: reading the Row's attributes by name and passing
    # keywords took longer than the query that fetched the row.
    (
        customer_id,
        email,
        external_id,
        first_name,
        last_name,
        balance,
        pin,
        registered,
        expires_on,
        expiring_points,
        last_change_at,
        last_change_points,
        referral_code,
        tier_id,
        tier_name,
        missions,
        rewards,
        referrals,
    ) = customer
    return Contact(
        customer_id,
        email,
        external_id,
        first_name,
        last_name,
        balance,
        pin,
        registered,
        expires_on,
        expiring_points,
        last_change_at,
        last_change_points,
        referral_code,
        referral_prefix + referral_code,
        tier_id,
        tier_name,
        missions,
        rewards,
        referrals,
    )


def _contacts(session: Session, statement: Select[Any], referral_prefix: str) -> list[Contact]:
    return [to_contact(row, referral_prefix) for row in session.execute(statement).all()]


def load_contacts(
    session: Session, customer_ids: Sequence[int], referral_prefix: str
) -> dict[int, Contact]:
    statement = select(*SNAPSHOT_COLUMNS).where(among(_customer.id, customer_ids))
    return {c.customer_id: c for c in _contacts(session, statement, referral_prefix)}


def contact_page(session: Session, after: int, limit: int, referral_prefix: str) -> list[Contact]:
    """The next ``limit`` customers with an id above ``after``, in id order (keyset paging)."""
    statement = (
        select(*SNAPSHOT_COLUMNS).where(_customer.id > after).order_by(_customer.id).limit(limit)
    )
    return _contacts(session, statement, referral_prefix)
