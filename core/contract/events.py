"""Events fired at email platforms to start a shop's automations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class EventType(StrEnum):
    """Platform-neutral event names; plugins map them (``ellity-credit-changed``, ...)."""

    CREDIT_CHANGED = "credit-changed"
    CREDIT_EXPIRES = "credit-expires"
    PIN_CHANGED = "pin-changed"
    TIER_CHANGED = "tier-changed"
    POINTS_EXPIRED = "points-expired"
    REFERRAL_COMPLETED = "referral-completed"
    REWARD_AVAILABLE = "reward-available"


def event_name(prefix: str, event_type: EventType) -> str:
    """The name a platform's automation starts on: the field prefix in dashes, then the type
    (``ellity_`` + ``credit-changed`` -> ``ellity-credit-changed``)."""
    stem = prefix.replace("_", "-")
    if stem and not stem.endswith("-"):
        stem += "-"
    return stem + event_type.value


@dataclass(frozen=True, slots=True)
class Event:
    """One event for one customer.

    ``id`` is the outbox row id: the key of this event's ``ItemFailure``. ``uid`` is what a
    plugin sends to the platform so that a repeat can be recognised (see its docstring).
    ``occurred_at`` is timezone-aware UTC. ``data`` holds, per type:

    - ``credit-changed``: ``points`` (signed int), ``balance`` (int), ``reason`` (slug)
    - ``credit-expires``: ``points`` (int > 0), ``expires_on`` (``YYYY-MM-DD``),
      ``days_before`` (int: the days left until ``expires_on``; the reminder's own days,
      14 of ``14,3``, when it goes out on time, fewer when it goes out late, as for points
      credited 10 days before they expire)
    - ``pin-changed``: ``pin`` (str)
    - ``tier-changed``: ``old_tier_id``, ``old_tier_name``, ``new_tier_id``, ``new_tier_name``
      (str or None), ``direction`` (``up`` or ``down``)
    - ``points-expired``: ``points`` (int > 0, taken), ``balance`` (int, left)
    - ``referral-completed``: ``referrals`` (the referrer's count now), ``added`` (int > 0,
      the referrals above the highest count they had: a count lowered and raised again
      announces each referral once)
    - ``reward-available``: ``threshold`` (int, the highest one crossed), ``balance`` (int)
    """

    id: int
    type: EventType
    customer_id: int
    email: str
    occurred_at: datetime
    data: Mapping[str, Any]

    @property
    def uid(self) -> str:
        """The event's id for the platform: ``<outbox id>-<enqueued at, UTC, to the µs>``.

        Delivery is at least once, so the same event may reach a platform twice; every
        delivery of one outbox row carries the same ``uid``, and no other event will. The
        row id alone could: SQLite hands out a purged highest id again, and a rebuilt
        database starts over at 1, while a shop's automation may remember ids for ever.
        """
        return f"{self.id}-{self.occurred_at.astimezone(UTC):%Y%m%d%H%M%S%f}"
