"""The Splio contact custom fields pointbridge fills, and their values for one contact."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pointbridge import Contact
from pointbridge.fields import FieldSpec

# Name without the prefix, Splio type (date | text | int | double), label.
FIELDS: tuple[tuple[str, str, str], ...] = (
    ("points_balance", "int", "points balance"),
    ("missions_count", "int", "missions completed"),
    ("rewards_count", "int", "rewards claimed"),
    ("referrals_count", "int", "referrals"),
    ("tier", "text", "VIP tier name"),
)

# Splio documents custom field values as strings ("can be an integer, a float, a string or a
# date"), so integers go out as their decimal text.
VALUES: Mapping[str, Callable[[Contact], str]] = {
    "points_balance": lambda c: str(c.points),
    "missions_count": lambda c: str(c.missions),
    "rewards_count": lambda c: str(c.rewards),
    "referrals_count": lambda c: str(c.referrals),
    "tier": lambda c: c.tier_name or "",
}

# Sent even when empty, so that an old value is cleared (the tier when a customer leaves it).
CLEARABLE = frozenset({"tier"})


def field_specs(prefix: str) -> list[FieldSpec]:
    return [FieldSpec(f"{prefix}{key}", data_type, label) for key, data_type, label in FIELDS]


def custom_fields(
    contact: Contact, prefix: str, field_ids: Mapping[str, Any], *, creating: bool
) -> list[dict[str, Any]]:
    """The ``custom_fields`` array of a contact payload.

    Fields are referenced by id when install stored one for that exact name (ids survive a
    rename in Splio's UI), by name otherwise. On creation an empty value is left out; on
    update it is sent, because leaving it out would keep the previous tier.
    """
    entries: list[dict[str, Any]] = []
    for key, value_of in VALUES.items():
        value = value_of(contact)
        if value == "" and (creating or key not in CLEARABLE):
            continue
        name = f"{prefix}{key}"
        field_id = field_ids.get(name)
        ref: dict[str, Any] = {"id": int(field_id)} if field_id is not None else {"name": name}
        entries.append({**ref, "value": value})
    return entries
