"""Contact snapshots built from the database at send time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from core.contact import Contact
from core.models import Customer, PointLot
from core.sql import among

# Core columns, not ORM objects or ORM-enabled selects: building a few hundred Customer
# objects per batch was the largest cost of a delivery call, and the ORM's row loading was
# still a third of a select's time.
_customer = Customer.__table__.c
_lot = PointLot.__table__.c


def next_expirations(session: Session, customer_ids: Sequence[int]) -> dict[int, tuple[date, int]]:
    """Per customer, the earliest upcoming expiry date and the points expiring then."""
    rows = session.execute(
        select(_lot.customer_id, _lot.expires_on, func.sum(_lot.remaining))
        .where(
            among(_lot.customer_id, customer_ids),
            _lot.remaining > 0,
            _lot.expires_on.is_not(None),
        )
        .group_by(_lot.customer_id, _lot.expires_on)
    )
    earliest: dict[int, tuple[date, int]] = {}
    for customer_id, expires_on, points in rows:
        if customer_id not in earliest or expires_on < earliest[customer_id][0]:
            earliest[customer_id] = (expires_on, int(points))
    return earliest


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
    _customer.last_change_at,
    _customer.last_change_points,
    _customer.referral_code,
    _customer.tier_id,
    _customer.tier_name,
    _customer.missions,
    _customer.rewards,
    _customer.referrals,
)


def to_contact(
    customer: Sequence[Any], expiry: tuple[date, int] | None, referral_prefix: str
) -> Contact:
    """The contact of a row of ``SNAPSHOT_COLUMNS`` and the customer's next expiry."""
    # Unpacked and passed by position: reading 16 Row attributes by name and passing 19
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
        last_change_at,
        last_change_points,
        referral_code,
        tier_id,
        tier_name,
        missions,
        rewards,
        referrals,
    ) = customer
    expires_on, expiring_points = expiry or (None, 0)
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
    rows = session.execute(statement).all()
    expiries = next_expirations(session, [row.id for row in rows])
    return [to_contact(row, expiries.get(row.id), referral_prefix) for row in rows]


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
