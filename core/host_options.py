"""An integration's host settings, the ones pointbridge itself acts on (expiry reminders, list
rewards, event switches, reward thresholds): read from the config file, the command line or
the APIs, and checked, each refusal naming what to write instead."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from pointbridge.contract.errors import PointbridgeError
from pointbridge.contract.events import EventType
from pointbridge.loyalty.rules import MAX_POINTS, WHOLE_NUMBER_TEXT
from pointbridge.loyalty.schema import has_unstorable

NO_NOTICE = {"", "off", "none", "no", "do not send", "never"}
MAX_NOTICE_DAYS = 365
MAX_REMINDERS = 5
MAX_THRESHOLDS = 20
MAX_LIST_ID = 100  # ListMembership.list_id's length
MAX_FIELD_PREFIX = 32  # IntegrationRow.field_prefix's length
MAX_NAME = 100  # IntegrationRow.name's length
# An integration's name is a segment of URLs (/api/integrations/{name}, the console's pages)
# and a word in commands: ASCII letters, digits, '.', '-' and '_', beginning with a letter or
# digit, so neither '.', '..' nor 'a/b' can be one, nor empty or blank text.
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]*"
NAME_RULE = (
    f"An integration's name is 1 to {MAX_NAME} characters matching {NAME_PATTERN} (letters, "
    "digits, '.', '-' and '_', beginning with a letter or digit), and not digits only (those "
    "are ids): e.g. newsletter"
)
# Names a console page already has: /admin/integrations/new is the form that adds one.
RESERVED_NAMES = frozenset({"new"})
T = TypeVar("T")


class IntegrationError(PointbridgeError):
    """Bad input for an integration: the message says what to fix."""


def parse_integration_name(value: Any) -> str:
    """A new integration's name, by ``NAME_RULE``."""
    if (
        not isinstance(value, str)
        or len(value) > MAX_NAME
        or re.fullmatch(NAME_PATTERN, value) is None
        or value.isdigit()
    ):
        raise IntegrationError(f"{NAME_RULE}; not {_shown(value)}.")
    if value in RESERVED_NAMES:
        raise IntegrationError(
            f"{value!r} names the console's page for adding an integration: choose another name."
        )
    return value


def parse_notice_days(value: Any) -> list[int] | None:
    """The expiry reminders' days ahead, longest first: ``7``, ``[14, 3]`` (TOML) or ``14,3``
    (command line); None for 'off'."""
    if _off(value):
        return None
    try:
        days = sorted(
            _distinct("expiry_notice_days", map(whole_number, _items(value))), reverse=True
        )
    except (TypeError, ValueError):
        raise IntegrationError(
            "expiry_notice_days must be days ahead (7, or several: 14,3) or 'off', not "
            f"{_shown(value)}."
        ) from None
    if not days or len(days) > MAX_REMINDERS or not all(1 <= d <= MAX_NOTICE_DAYS for d in days):
        raise IntegrationError(
            f"expiry_notice_days takes 1 to {MAX_REMINDERS} reminders, each between 1 and "
            f"{MAX_NOTICE_DAYS} days ahead (e.g. 14,3), or 'off'."
        )
    return days


def parse_field_prefix(value: Any) -> str:
    """The prefix of every field pointbridge writes: text of at most ``MAX_FIELD_PREFIX``
    characters (the column's width; longer was a 500 on PostgreSQL from the console and the
    command line, which the API refused)."""
    if not isinstance(value, str):
        raise IntegrationError(f"field_prefix is text, e.g. ellity_, not {_shown(value)}.")
    prefix = value
    if len(prefix) > MAX_FIELD_PREFIX or has_unstorable(prefix):
        raise IntegrationError(
            f"field_prefix is at most {MAX_FIELD_PREFIX} characters of text, e.g. ellity_."
        )
    return prefix


def parse_disabled_events(value: Any) -> list[str]:
    """Event types not to send (``tier-changed,pin-changed``); 'none' or empty sends all."""
    if _off(value):
        return []
    names = [str(item).strip() for item in _items(value) if str(item).strip()]
    known = {str(event_type) for event_type in EventType}
    if len(names) > len(known):
        raise IntegrationError(f"disabled_events names at most the {len(known)} events.")
    if unknown := sorted(set(names) - known):
        raise IntegrationError(
            f"disabled_events: no event {', '.join(map(_shown, unknown))}; the events are: "
            f"{', '.join(sorted(known))}."
        )
    return sorted(_distinct("disabled_events", names))


def parse_reward_thresholds(value: Any) -> list[int]:
    """Balances whose upward crossing sends reward-available (``500,1000``); empty: none."""
    if _off(value):
        return []
    try:
        thresholds = sorted(_distinct("reward_thresholds", map(whole_number, _items(value))))
    except (TypeError, ValueError):
        raise IntegrationError(
            f"reward_thresholds takes point balances, e.g. 500,1000, not {_shown(value)}."
        ) from None
    if len(thresholds) > MAX_THRESHOLDS or not all(0 < t <= MAX_POINTS for t in thresholds):
        raise IntegrationError(
            f"reward_thresholds takes up to {MAX_THRESHOLDS} balances, each between 1 and "
            f"{MAX_POINTS:,}."
        )
    return thresholds


def _off(value: Any) -> bool:
    """Nothing, or a word for nothing ("off", "none", ...)."""
    return value is None or (isinstance(value, str) and value.strip().lower() in NO_NOTICE)


def whole_number(item: Any) -> int:
    """An integer as an admin writes it: a JSON or TOML integer, or ASCII digits. A float
    (3.7, 1e400, inf), a boolean, ``1_4`` or another script's digits raise ValueError rather
    than be read as some other number (``int(inf)`` was a 500)."""
    if isinstance(item, int) and not isinstance(item, bool):
        return item
    if isinstance(item, str) and WHOLE_NUMBER_TEXT.fullmatch(item.strip()):
        return int(item.strip())
    raise ValueError(f"not a whole number: {item!r}")


def _distinct(setting: str, items: Iterable[T]) -> set[T]:
    """Each item once: a repeat is refused, as it is most likely a slip (3,14,3 for 3,14,30)."""
    seen: set[T] = set()
    for item in items:
        if item in seen:
            raise IntegrationError(f"{setting}: {_shown(item)} is written twice; write it once.")
        seen.add(item)
    return seen


def _shown(value: Any) -> str:
    """A value as a refusal quotes it: escaped, and cut short (a request may be megabytes)."""
    shown = value if isinstance(value, str) and value.isprintable() else repr(value)
    return shown if len(shown) <= 40 else shown[:40] + "…"


def _items(value: Any) -> list[Any]:
    """A TOML list as it is, a comma list from the command line split, a number alone."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def parse_list_rewards(value: Any) -> dict[str, int]:
    """``{"1": 50}`` from TOML, or ``1:50,2:20`` from the command line."""
    if isinstance(value, str):
        pairs = [item.split(":", 1) for item in value.split(",") if item.strip()]
        if any(len(pair) != 2 for pair in pairs):
            raise IntegrationError("list_rewards takes LIST_ID:POINTS pairs, e.g. 1:50,2:20.")
        value = {list_id.strip(): points.strip() for list_id, points in pairs}
    if not isinstance(value, Mapping):
        raise IntegrationError("list_rewards must map list ids to points.")
    rewards: dict[str, int] = {}
    for list_id, points in value.items():
        if not 0 < len(str(list_id)) <= MAX_LIST_ID:
            raise IntegrationError(
                f"list_rewards: a list id is 1 to {MAX_LIST_ID} characters long, not "
                f"{len(str(list_id))}."
            )
        try:
            rewards[str(list_id)] = whole_number(points)
        except (TypeError, ValueError):
            raise IntegrationError(
                f"list_rewards: points for list {list_id} must be a number."
            ) from None
        if not 0 < rewards[str(list_id)] <= MAX_POINTS:
            raise IntegrationError(
                f"list_rewards: points for list {list_id} must be between 1 and {MAX_POINTS:,}."
            )
    return rewards
