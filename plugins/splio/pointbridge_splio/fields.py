"""The Splio contact custom fields pointbridge fills, and their values for one contact."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pointbridge import Contact, loyalty_fields
from pointbridge.kit.fields import FieldSpec, installed_only

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
    # A calendar day, as Splio takes a date value: "YYYY-MM-DD HH:MM:SS" at midnight
    # (``loyalty_fields`` does not move a day into any zone).
    ("tier_expires_at", "date", "VIP tier end", "tier_expires_at"),
)

# Sent even when empty, so that an old value is cleared (the tier when a customer leaves it).
CLEARABLE = frozenset({"tier", "points_to_next_tier", "tier_expires_at"})


def field_specs(prefix: str) -> list[FieldSpec]:
    return [FieldSpec(f"{prefix}{key}", data_type, label) for key, data_type, label, _ in FIELDS]


def custom_fields(
    contact: Contact, prefix: str, field_ids: Mapping[str, Any] | None, *, creating: bool
) -> list[dict[str, Any]]:
    """The ``custom_fields`` array of a contact payload.

    ``field_ids`` is what install recorded (field name -> Splio id, or None): only those
    fields are written (``installed_only``), all of them by name when there is no record.
    Fields are referenced by id when install stored one for that exact name (ids survive a
    rename in Splio's UI), by name otherwise. On creation an empty value is left out; on
    update it is sent, because leaving it out would keep the previous tier.
    """
    values = loyalty_fields(contact)
    named = {f"{prefix}{key}": (key, source) for key, _, _, source in FIELDS}
    ids = field_ids or {}
    entries: list[dict[str, Any]] = []
    for name, (key, source) in installed_only(named, field_ids).items():
        # Splio documents custom field values as strings ("can be an integer, a float, a string
        # or a date"), so integers go out as their decimal text.
        value = str(values[source])
        if value == "" and (creating or key not in CLEARABLE):
            continue
        field_id = ids.get(name)
        ref: dict[str, Any] = {"id": int(field_id)} if field_id is not None else {"name": name}
        entries.append({**ref, "value": value})
    return entries
