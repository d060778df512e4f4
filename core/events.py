"""Events fired at email platforms to start a shop's automations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class EventType(StrEnum):
    """Platform-neutral event names; plugins map them (``ellity-credit-changed``, ...)."""

    CREDIT_CHANGED = "credit-changed"
    CREDIT_EXPIRES = "credit-expires"
    PIN_CHANGED = "pin-changed"


@dataclass(frozen=True, slots=True)
class Event:
    """One event for one customer.

    ``id`` is stable across retries (the outbox row id), so a plugin may use it as an
    idempotency key where the platform offers one. ``data`` holds, per type:

    - ``credit-changed``: ``points`` (signed int), ``balance`` (int), ``reason`` (slug)
    - ``credit-expires``: ``points`` (int > 0), ``expires_on`` (``YYYY-MM-DD``)
    - ``pin-changed``: ``pin`` (str)
    """

    id: int
    type: EventType
    customer_id: int
    email: str
    occurred_at: datetime
    data: Mapping[str, Any]
