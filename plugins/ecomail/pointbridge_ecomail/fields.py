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
from datetime import date, datetime, tzinfo
from typing import Any

from pointbridge import Contact, Integration, loyalty_fields, shop_time
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


def _date_value(value: date | datetime | None, timezone: tzinfo) -> str:
    # Ecomail's documented date format is YYYY-MM-DD; a time part would make the value a
    # string the date-typed field might refuse, and automations count in days anyway.
    # A moment is dated by the shop's clock: 00:30 in Prague is that day, not UTC's day before.
    if isinstance(value, datetime):
        value = shop_time(value, timezone).date()
    return "" if value is None else value.isoformat()


def plain_values(prefix: str, contact: Contact, timezone: tzinfo) -> dict[str, str | int]:
    """Every field's value under its name in the list, as Ecomail should store it."""
    values = {
        **loyalty_fields(contact, timezone),
        "next_expiration_date": _date_value(contact.next_expiration_date, timezone),
        "last_change_date": _date_value(contact.last_change_at, timezone),
    }
    return {name: values[spec.name] for name, spec in _named(prefix)}


@functools.lru_cache(maxsize=64)
def _named(prefix: str) -> tuple[tuple[str, FieldSpec], ...]:
    """The catalog with each field's name in the list, worked out once per prefix: for every
    subscriber of an export it cost more than the values."""
    return tuple((field_name(prefix, spec), spec) for spec in CATALOG)


def custom_fields(prefix: str, contact: Contact, timezone: tzinfo) -> dict[str, Any]:
    """The ``custom_fields`` object of one subscriber, typed where the type matters."""
    plain = plain_values(prefix, contact, timezone)
    out: dict[str, Any] = {}
    for name, spec in _named(prefix):
        value = plain[name]
        # An empty date clears the field; sent typed so a first write still makes it a date.
        typed = {"value": None if value == "" else value, "type": spec.type}
        out[name] = str(value) if spec.type == STRING else typed
    return out


def custom_fields_size(fields: dict[str, Any]) -> int:
    """How long the fields are by Ecomail's 5,000-character rule (measured as compact JSON)."""
    return len(json.dumps(fields, ensure_ascii=False, separators=(",", ":")))


# Per field, besides its key and value: quotes, colon and comma, and a typed value's
# ``{"value":…,"type":"…"}`` wrapper.
_FIELD_OVERHEAD = 40


def size_bound(fields: dict[str, Any]) -> int:
    """At least ``custom_fields_size``, from the keys' and values' lengths alone (a character
    takes at most 6 in JSON)."""
    total = 2
    for key, value in fields.items():
        raw = value["value"] if isinstance(value, dict) else value
        total += 6 * (len(key) + len(str(raw))) + _FIELD_OVERHEAD
    return total


def oversize(fields: dict[str, Any]) -> int | None:
    """The fields' size when it is over Ecomail's limit, else None. Measured only when the
    cheap bound says it might be: serializing every subscriber of an export to measure it
    cost a third as much as encoding the whole body."""
    if size_bound(fields) <= CUSTOM_FIELDS_MAX_CHARS:
        return None
    size = custom_fields_size(fields)
    return size if size > CUSTOM_FIELDS_MAX_CHARS else None


def csv_row(integration: Integration, contact: Contact) -> dict[str, str | int]:
    """One row of the Ecomail import CSV: ``email`` and every prefixed loyalty column."""
    return {
        "email": contact.email,
        **plain_values(integration.field_prefix, contact, integration.timezone),
    }
