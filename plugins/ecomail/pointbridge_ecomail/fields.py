"""The loyalty custom fields pointbridge keeps in an Ecomail list, and their values per contact.

Ecomail has no API that defines a custom field up front: a list gains a field the first time a
subscriber write carries it, and a typed value (``{"value": 120, "type": "int"}``) sets the
field's type. So every push sends every field, typed where the type matters to segments and
automations (numbers compared, dates counted down), and the values here are the whole story.
"""

from __future__ import annotations

import functools
import json
from dataclasses import replace
from datetime import tzinfo
from typing import Any, NamedTuple

from pointbridge import Contact, Integration, loyalty_fields
from pointbridge.kit.fields import FieldSpec

# Ecomail's own limit on one subscriber's custom fields, in characters (docs: subscribe-bulk).
CUSTOM_FIELDS_MAX_CHARS = 5000

STRING = "string"
INT = "int"
DATE = "date"


# Names are the neutral ones of ``loyalty_fields`` (``wanted`` applies the prefix); the order
# is the CSV column order. Text fields stay plain strings: a plain string is the form every
# Ecomail example uses, and it keeps fields an admin already created as text untouched.
CATALOG: tuple[FieldSpec, ...] = (
    FieldSpec("credit", STRING, "Points balance (text)"),
    FieldSpec("credit_num", INT, "Points balance (number)"),
    FieldSpec("pin", STRING, "PIN of an unregistered customer"),
    FieldSpec("registered", STRING, "Registered in the loyalty program (1/0)"),
    FieldSpec("next_expiration_date", DATE, "Date the next points expire"),
    FieldSpec("next_expiration_value", STRING, "Points expiring next (text)"),
    FieldSpec("next_expiration_value_num", INT, "Points expiring next (number)"),
    FieldSpec("last_change_date", DATE, "Date of the last points change"),
    FieldSpec("last_change_value", STRING, "Points of the last change"),
    FieldSpec("referral_code", STRING, "Referral code"),
    FieldSpec("referral_link", STRING, "Referral link"),
    FieldSpec("lifetime_points", INT, "Points earned ever"),
    FieldSpec("tier_expires_at", DATE, "Date the VIP tier ends"),
    FieldSpec("points_to_next_tier", INT, "Points still needed for the next VIP tier"),
)


def normalize_key(name: str) -> str:
    """Ecomail trims and lower-cases custom-field keys; compare names the same way."""
    return name.strip().lower()


def field_name(prefix: str, spec: FieldSpec) -> str:
    return normalize_key(f"{prefix}{spec.name}")


def wanted(prefix: str) -> list[FieldSpec]:
    """The catalog under the names the list holds, for ``ensure_fields``."""
    return [replace(spec, name=field_name(prefix, spec)) for spec in CATALOG]


def field_names(prefix: str) -> list[str]:
    return [spec.name for spec in wanted(prefix)]


def event_category(prefix: str) -> str:
    """``ellity_`` -> ``ellity``: the tracker category automations filter on."""
    return normalize_key(prefix).rstrip("_") or "pointbridge"


def _values(contact: Contact, timezone: tzinfo) -> dict[str, str | int]:
    """Every catalog value under its neutral name. Ecomail's documented date format is
    YYYY-MM-DD: a time part would make the value a string the date-typed field might refuse,
    and automations count in days anyway. A moment is dated by the shop's clock: 00:30 in
    Prague is that day, not UTC's day before."""
    values = loyalty_fields(contact, timezone)
    # The day of the shop-time ``YYYY-MM-DD HH:MM:SS`` values: converting each moment to the
    # shop's time zone again cost more than the rest of a subscriber's fields.
    for name in ("next_expiration_date", "last_change_date", "tier_expires_at"):
        values[name] = str(values[name])[:10]
    # A number field takes a number; empty (no next tier known) clears it.
    values["points_to_next_tier"] = (
        "" if contact.points_to_next_tier is None else contact.points_to_next_tier
    )
    return values


# Per field, besides its key and value: quotes, colon and comma, and a typed value's
# ``{"value":…,"type":"…"}`` wrapper.
_FIELD_OVERHEAD = 40


class _Layout(NamedTuple):
    """The catalog under one prefix: (name in the list, neutral name, type) per field, and
    the part of the size bound that does not depend on the values."""

    fields: tuple[tuple[str, str, str], ...]
    fixed_bound: int


@functools.lru_cache(maxsize=64)
def _layout(prefix: str) -> _Layout:
    # Worked out once per prefix: for every subscriber of an export it cost more than the
    # values. A character takes at most 6 in JSON (``\uXXXX``), hence the factor.
    fields = tuple((field_name(prefix, spec), spec.name, spec.type) for spec in CATALOG)
    fixed = 2 + sum(6 * len(name) + _FIELD_OVERHEAD for name, _, _ in fields)
    return _Layout(fields, fixed)


def plain_values(prefix: str, contact: Contact, timezone: tzinfo) -> dict[str, str | int]:
    """Every field's value under its name in the list, as Ecomail should store it."""
    values = _values(contact, timezone)
    return {name: values[key] for name, key, _ in _layout(prefix).fields}


class SubscriberFields(NamedTuple):
    """A subscriber's ``custom_fields`` object and an upper bound of its size by Ecomail's
    rule, gathered while it was built: measuring every subscriber of an export by
    serializing it cost a third as much as encoding the whole body."""

    fields: dict[str, Any]
    size_bound: int


def custom_fields(prefix: str, contact: Contact, timezone: tzinfo) -> SubscriberFields:
    """The ``custom_fields`` object of one subscriber, typed where the type matters."""
    layout = _layout(prefix)
    values = _values(contact, timezone)
    fields: dict[str, Any] = {}
    characters = 0
    for name, key, kind in layout.fields:
        text = str(values[key])
        characters += len(text)
        if kind == STRING:
            fields[name] = text
        else:
            # An empty date clears the field; sent typed so a first write makes it a date.
            value = values[key]
            fields[name] = {"value": None if value == "" else value, "type": kind}
    return SubscriberFields(fields, layout.fixed_bound + 6 * characters)


def custom_fields_size(fields: dict[str, Any]) -> int:
    """How long the fields are by Ecomail's 5,000-character rule (measured as compact JSON)."""
    return len(json.dumps(fields, ensure_ascii=False, separators=(",", ":")))


def oversize(built: SubscriberFields) -> int | None:
    """The fields' size when it is over Ecomail's limit, else None; measured only when the
    bound says it might be."""
    if built.size_bound <= CUSTOM_FIELDS_MAX_CHARS:
        return None
    size = custom_fields_size(built.fields)
    return size if size > CUSTOM_FIELDS_MAX_CHARS else None


def csv_row(integration: Integration, contact: Contact) -> dict[str, str | int]:
    """One row of the Ecomail import CSV: ``email`` and every prefixed loyalty column."""
    return {
        "email": contact.email,
        **plain_values(integration.field_prefix, contact, integration.timezone),
    }
