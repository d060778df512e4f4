"""Contact snapshots built from the database at send time."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

from sqlalchemy import func, select
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


def to_contact(
    customer: Customer, expiry: tuple[date, int] | None, referral_prefix: str
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


def build_contacts(
    session: Session, customers: Iterable[Customer], referral_prefix: str
) -> list[Contact]:
    customers = list(customers)
    expiries = next_expirations(session, [c.id for c in customers])
    return [to_contact(c, expiries.get(c.id), referral_prefix) for c in customers]


def load_contacts(
    session: Session, customer_ids: Sequence[int], referral_prefix: str
) -> dict[int, Contact]:
    customers = session.scalars(select(Customer).where(Customer.id.in_(customer_ids)))
    return {c.customer_id: c for c in build_contacts(session, customers, referral_prefix)}
