"""The Splio contact custom fields pointbridge fills, and their values for one contact."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pointbridge import Contact


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One custom field: name without the prefix, Splio type, value for a contact."""

    key: str
    type: str  # Splio's custom field types: date | text | int | double
    value: Callable[[Contact], str]
    label: str
    # Sent even when empty, so that an old value is cleared (the tier when a customer leaves it).
    clearable: bool = False


# Splio documents custom field values as strings ("can be an integer, a float, a string or a
# date"), so integers go out as their decimal text.
FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("points_balance", "int", lambda c: str(c.points), "points balance"),
    FieldSpec("missions_count", "int", lambda c: str(c.missions), "missions completed"),
    FieldSpec("rewards_count", "int", lambda c: str(c.rewards), "rewards claimed"),
    FieldSpec("referrals_count", "int", lambda c: str(c.referrals), "referrals"),
    FieldSpec("tier", "text", lambda c: c.tier_name or "", "VIP tier name", clearable=True),
)


def field_name(prefix: str, spec: FieldSpec) -> str:
    return f"{prefix}{spec.key}"


def field_names(prefix: str) -> list[str]:
    return [field_name(prefix, spec) for spec in FIELDS]


def custom_fields(
    contact: Contact, prefix: str, field_ids: Mapping[str, Any], *, creating: bool
) -> list[dict[str, Any]]:
    """The ``custom_fields`` array of a contact payload.

    Fields are referenced by id when install stored one for that exact name (ids survive a
    rename in Splio's UI), by name otherwise. On creation an empty value is left out; on
    update it is sent, because leaving it out would keep the previous tier.
    """
    entries: list[dict[str, Any]] = []
    for spec in FIELDS:
        value = spec.value(contact)
        if value == "" and (creating or not spec.clearable):
            continue
        name = field_name(prefix, spec)
        field_id = field_ids.get(name)
        ref: dict[str, Any] = {"id": int(field_id)} if field_id is not None else {"name": name}
        entries.append({**ref, "value": value})
    return entries
