"""Contact snapshots built from the database at send time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Row, Select, func, select
from sqlalchemy.orm import Session

from core.contact import Contact
from core.models import Customer, PointLot


def next_expirations(session: Session, customer_ids: Sequence[int]) -> dict[int, tuple[date, int]]:
    """Per customer, the earliest upcoming expiry date and the points expiring then."""
    rows = session.execute(
        select(PointLot.customer_id, PointLot.expires_on, func.sum(PointLot.remaining))
        .where(
            PointLot.customer_id.in_(customer_ids),
            PointLot.remaining > 0,
            PointLot.expires_on.is_not(None),
        )
        .group_by(PointLot.customer_id, PointLot.expires_on)
    )
    earliest: dict[int, tuple[date, int]] = {}
    for customer_id, expires_on, points in rows:
        if customer_id not in earliest or expires_on < earliest[customer_id][0]:
            earliest[customer_id] = (expires_on, int(points))
    return earliest


# Plain rows of just these columns, not ORM objects: building a few hundred Customer objects
# per batch was the largest cost of a delivery call.
SNAPSHOT_COLUMNS = (
    Customer.id,
    Customer.email,
    Customer.external_id,
    Customer.first_name,
    Customer.last_name,
    Customer.balance,
    Customer.pin,
    Customer.registered,
    Customer.last_change_at,
    Customer.last_change_points,
    Customer.referral_code,
    Customer.tier_id,
    Customer.tier_name,
    Customer.missions,
    Customer.rewards,
    Customer.referrals,
)


def to_contact(
    customer: Row[Any], expiry: tuple[date, int] | None, referral_prefix: str
) -> Contact:
    return Contact(
        customer_id=customer.id,
        email=customer.email,
        external_id=customer.external_id,
        first_name=customer.first_name,
        last_name=customer.last_name,
        points=customer.balance,
        pin=customer.pin,
        registered=customer.registered,
        next_expiration_date=expiry[0] if expiry else None,
        next_expiration_points=expiry[1] if expiry else 0,
        last_change_at=customer.last_change_at,
        last_change_points=customer.last_change_points,
        referral_code=customer.referral_code,
        referral_link=referral_prefix + customer.referral_code,
        tier_id=customer.tier_id,
        tier_name=customer.tier_name,
        missions=customer.missions,
        rewards=customer.rewards,
        referrals=customer.referrals,
    )


def _contacts(session: Session, statement: Select[Any], referral_prefix: str) -> list[Contact]:
    rows = session.execute(statement).all()
    expiries = next_expirations(session, [row.id for row in rows])
    return [to_contact(row, expiries.get(row.id), referral_prefix) for row in rows]


def load_contacts(
    session: Session, customer_ids: Sequence[int], referral_prefix: str
) -> dict[int, Contact]:
    statement = select(*SNAPSHOT_COLUMNS).where(Customer.id.in_(customer_ids))
    return {c.customer_id: c for c in _contacts(session, statement, referral_prefix)}


def contact_page(session: Session, after: int, limit: int, referral_prefix: str) -> list[Contact]:
    """The next ``limit`` customers with an id above ``after``, in id order (keyset paging)."""
    statement = (
        select(*SNAPSHOT_COLUMNS).where(Customer.id > after).order_by(Customer.id).limit(limit)
    )
    return _contacts(session, statement, referral_prefix)
