"""The events a change means beyond itself: a new tier, a completed referral, a reward within
reach. Each is worked out from the values before and after the change, in the change's own
transaction, so it is queued exactly when the change is written."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pointbridge.contract.events import EventType
from pointbridge.delivery.outbox import Outbox
from pointbridge.storage.models import Customer
from pointbridge.storage.sql import among, executemany

CUSTOMERS = Customer.__table__


@dataclass(frozen=True, slots=True)
class Standing:
    """What the milestones of an update compare, before and after it."""

    tier: tuple[str | None, str | None]  # (tier_id, tier_name)
    referrals: int


def update_events(
    outbox: Outbox,
    session: Session,
    changes: Sequence[tuple[int, Standing, Standing]],
    tier_order: Sequence[str],
) -> None:
    """Queue what updates of customers mean: ``(customer id, standing before, after)`` each.
    The REST API passes one customer, an import a batch: the same change, the same events.
    The customers' rows are the caller's to write (locked, or new in its transaction)."""
    tiers = []
    for customer_id, old, new in changes:
        if changed := tier_change(old.tier, new.tier, tier_order):
            tiers.append((customer_id, changed))
    outbox.events(session, EventType.TIER_CHANGED, tiers)
    outbox.events(session, EventType.REFERRAL_COMPLETED, keep_referral_highs(session, changes))


def keep_referral_highs(
    session: Session, changes: Sequence[tuple[int, Standing, Standing]]
) -> list[tuple[int, dict[str, Any]]]:
    """Each customer's ``referral-completed`` for the referrals above the highest count they
    ever had (``customer.referrals_high``, kept here), not above the count before: a count
    lowered by 1 and raised by 1 again is the same referral, announced once already. A change
    that sends no events (an import without them) keeps the highs all the same."""
    moved = [
        (customer_id, old.referrals, new.referrals)
        for customer_id, old, new in changes
        if old.referrals != new.referrals
    ]
    if not moved:
        return []
    highs = dict(
        session.execute(
            select(CUSTOMERS.c.id, CUSTOMERS.c.referrals_high).where(
                among(CUSTOMERS.c.id, sorted({c for c, _, _ in moved}))
            )
        ).all()
    )
    completed, raised = [], []
    for customer_id, old, new in moved:
        # The count before counts too: one set when the customer was created was never
        # announced, yet lowering and raising it again completes no referral.
        high = max(highs[customer_id], old)
        if announced := referral_completed(high, new):
            completed.append((customer_id, announced))
        if max(high, new) != highs[customer_id]:
            highs[customer_id] = max(high, new)
            raised.append((highs[customer_id], customer_id))
    executemany(
        session.connection(),
        "UPDATE customer SET referrals_high = {} WHERE id = {}",
        [CUSTOMERS.c.referrals_high, CUSTOMERS.c.id],
        raised,
    )
    return completed


def rewards_reached(
    outbox: Outbox, session: Session, balances: Sequence[tuple[int, int, int]]
) -> None:
    """``reward-available`` to each integration whose thresholds a balance rose past:
    ``(customer id, balance before, after)`` each."""
    for target in outbox.targets(session):
        reached = [
            (customer_id, {"threshold": threshold, "balance": after})
            for customer_id, before, after in balances
            if (threshold := thresholds_crossed(target.reward_thresholds, before, after))
            is not None
        ]
        outbox.events(
            session,
            EventType.REWARD_AVAILABLE,
            reached,
            integration_ids=[target.integration_id],
        )


def tier_change(
    old: tuple[str | None, str | None],
    new: tuple[str | None, str | None],
    tier_order: Sequence[str],
) -> dict[str, Any] | None:
    """``tier-changed``'s data when the tier id moved (a renamed tier is no change for the
    customer), else None. ``(tier_id, tier_name)`` before and after."""
    if old[0] == new[0]:
        return None
    return {
        "old_tier_id": old[0],
        "old_tier_name": old[1],
        "new_tier_id": new[0],
        "new_tier_name": new[1],
        "direction": _direction(old[0], new[0], tier_order),
    }


def _direction(old: str | None, new: str | None, tier_order: Sequence[str]) -> str | None:
    """``up`` or ``down``: by the shop's ``tier_order`` when it names both, else by number
    when both ids are numbers (Smile's VIP tier ids); joining a tier is up and leaving every
    tier down. None when nothing says which tier is higher."""
    if old is None or new is None:
        return "up" if old is None else "down"
    if old in tier_order and new in tier_order:
        return "up" if tier_order.index(new) > tier_order.index(old) else "down"
    # ASCII digits only: "²".isdigit() is true and int("²") fails (a 500).
    if old.isascii() and new.isascii() and old.isdigit() and new.isdigit():
        return "up" if int(new) > int(old) else "down"
    return None


def referral_completed(old: int, new: int) -> dict[str, Any] | None:
    """The referrer's ``referral-completed`` when the shop raised their count of completed
    referrals above ``old`` (pointbridge keeps the count, not who was referred)."""
    return {"referrals": new, "added": new - old} if new > old else None


def thresholds_crossed(thresholds: Sequence[int], before: int, after: int) -> int | None:
    """The highest threshold the balance rose to or past, from below; None if none. Once
    per upward crossing: a balance that falls below and rises again crosses again."""
    crossed = [t for t in thresholds if before < t <= after]
    return max(crossed) if crossed else None
