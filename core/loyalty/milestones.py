"""The events a change means beyond itself: a new tier, a completed referral, a reward within
reach. Each is worked out from the values before and after the change, in the change's own
transaction, so it is queued exactly when the change is written."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from pointbridge.contract.events import EventType
from pointbridge.delivery.outbox import Outbox
from pointbridge.storage.models import Customer


def update_events(
    outbox: Outbox,
    session: Session,
    customer: Customer,
    tier: tuple[str | None, str | None],
    referrals: int,
    tier_order: Sequence[str],
) -> None:
    """Queue what an update of ``customer`` means, given its tier and referral count before."""
    new_tier = (customer.tier_id, customer.tier_name)
    if changed := tier_change(tier, new_tier, tier_order):
        outbox.event(session, customer.id, EventType.TIER_CHANGED, changed)
    if completed := referral_completed(referrals or 0, customer.referrals or 0):
        outbox.event(session, customer.id, EventType.REFERRAL_COMPLETED, completed)


def rewards_reached(
    outbox: Outbox, session: Session, customer_id: int, before: int, after: int
) -> None:
    """``reward-available`` to each integration whose thresholds the balance rose past."""
    for target in outbox.targets(session):
        threshold = thresholds_crossed(target.reward_thresholds, before, after)
        if threshold is not None:
            outbox.events(
                session,
                EventType.REWARD_AVAILABLE,
                [(customer_id, {"threshold": threshold, "balance": after})],
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
    referrals (pointbridge keeps the count, not who was referred)."""
    return {"referrals": new, "added": new - old} if new > old else None


def thresholds_crossed(thresholds: Sequence[int], before: int, after: int) -> int | None:
    """The highest threshold the balance rose to or past, from below; None if none. Once
    per upward crossing: a balance that falls below and rises again crosses again."""
    crossed = [t for t in thresholds if before < t <= after]
    return max(crossed) if crossed else None
