"""The Splio contact custom fields pointbridge fills, and their values for one contact."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pointbridge import Contact, loyalty_fields
from pointbridge.kit.fields import FieldSpec

# Name without the prefix, Splio type (date | text | int | double), label, and the
# ``loyalty_fields`` key of its value.
FIELDS: tuple[tuple[str, str, str, str], ...] = (
    ("points_balance", "int", "points balance", "credit"),
    ("missions_count", "int", "missions completed", "missions"),
    ("rewards_count", "int", "rewards claimed", "rewards"),
    ("referrals_count", "int", "referrals", "referrals"),
    ("tier", "text", "VIP tier name", "tier_name"),
    ("lifetime_points", "int", "points ever credited", "lifetime_points"),
    ("points_to_next_tier", "int", "points to the next tier", "points_to_next_tier"),
)

# Sent even when empty, so that an old value is cleared (the tier when a customer leaves it).
CLEARABLE = frozenset({"tier", "points_to_next_tier"})


def field_specs(prefix: str) -> list[FieldSpec]:
    return [FieldSpec(f"{prefix}{key}", data_type, label) for key, data_type, label, _ in FIELDS]


def custom_fields(
    contact: Contact, prefix: str, field_ids: Mapping[str, Any], *, creating: bool
) -> list[dict[str, Any]]:
    """The ``custom_fields`` array of a contact payload.

    Fields are referenced by id when install stored one for that exact name (ids survive a
    rename in Splio's UI), by name otherwise. On creation an empty value is left out; on
    update it is sent, because leaving it out would keep the previous tier.
    """
    values = loyalty_fields(contact)
    entries: list[dict[str, Any]] = []
    for key, _, _, source in FIELDS:
        # Splio documents custom field values as strings ("can be an integer, a float, a string
        # or a date"), so integers go out as their decimal text.
        value = str(values[source])
        if value == "" and (creating or key not in CLEARABLE):
            continue
        name = f"{prefix}{key}"
        field_id = field_ids.get(name)
        ref: dict[str, Any] = {"id": int(field_id)} if field_id is not None else {"name": name}
        entries.append({**ref, "value": value})
    return entries
