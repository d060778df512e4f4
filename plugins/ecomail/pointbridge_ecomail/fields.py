"""The loyalty custom fields pointbridge keeps in an Ecomail list, and their values per contact.

Ecomail has no API that defines a custom field up front: a list gains a field the first time a
subscriber write carries it, and a typed value (``{"value": 120, "type": "int"}``) sets the
field's type. So every push sends every field, typed where the type matters to segments and
automations (numbers compared, dates counted down), and the values here are the whole story.
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, tzinfo
from typing import Any, NamedTuple

from pointbridge import Contact, Integration, shop_time
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


def _day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


class _ShopDays:
    """The shop-time day of stored moments, each distinct moment converted once: an export's
    page holds many equal ones (an import, a night's expiry), and the conversion to the
    shop's time zone cost more than the rest of a subscriber's fields."""

    def __init__(self, timezone: tzinfo) -> None:
        self._timezone = timezone
        self._days: dict[datetime, str] = {}

    def __call__(self, value: datetime | None) -> str | None:
        if value is None:
            return None
        day = self._days.get(value)
        if day is None:
            day = self._days[value] = shop_time(value, self._timezone).date().isoformat()
        return day


def _values(contact: Contact, days: _ShopDays) -> tuple[str | int | None, ...]:
    """Every catalog value in ``CATALOG``'s order, None where a typed field is cleared.
    Ecomail's documented date format is YYYY-MM-DD: a time part would make the value a
    string the date-typed field might refuse, and automations count in days anyway. A moment
    is dated by the shop's clock: 00:30 in Prague is that day, not UTC's day before. The
    values are ``loyalty_fields``' (the catalog's meaning), taken straight from the contact:
    building that dict and reading it again cost a third of a subscriber's fields."""
    points, expiring, change = (
        contact.points,
        contact.next_expiration_points,
        contact.last_change_points,
    )
    return (
        str(points),
        points,
        contact.pin or "",
        "1" if contact.registered else "0",
        _day(contact.next_expiration_date),
        str(expiring),
        expiring,
        days(contact.last_change_at),
        "" if change is None else str(change),
        contact.referral_code or "",
        contact.referral_link or "",
        contact.lifetime_points,
        _day(contact.tier_expires_at),
        contact.points_to_next_tier,
    )


# Per field, besides its key and value: quotes, colon and comma, and a typed value's
# ``{"value":…,"type":"…"}`` wrapper; and a typed value's own length at most (a 64-bit
# integer with its sign, or a date).
_FIELD_OVERHEAD = 40
_TYPED_VALUE_MAX = 20


class _Layout(NamedTuple):
    """The catalog under one prefix: the names in the list, the typed fields (name, type),
    a getter of the plain-text values, and the part of the size bound that does not
    depend on the values."""

    names: tuple[str, ...]
    typed: tuple[tuple[str, str], ...]
    texts: Callable[[tuple[Any, ...]], tuple[str, ...]]
    fixed_bound: int


@functools.lru_cache(maxsize=64)
def _layout(prefix: str) -> _Layout:
    # Worked out once per prefix: for every subscriber of an export it cost more than the
    # values. A character takes at most 6 in JSON (``\uXXXX``), hence the factor.
    names = tuple(field_name(prefix, spec) for spec in CATALOG)
    typed = tuple(
        (name, spec.type) for name, spec in zip(names, CATALOG, strict=True) if spec.type != STRING
    )
    texts = [i for i, spec in enumerate(CATALOG) if spec.type == STRING]
    fixed = 2 + sum(6 * len(name) + _FIELD_OVERHEAD for name in names)
    return _Layout(names, typed, operator.itemgetter(*texts), fixed + _TYPED_VALUE_MAX * len(typed))


def plain_values(prefix: str, contact: Contact, timezone: tzinfo) -> dict[str, str | int]:
    """Every field's value under its name in the list, as Ecomail should store it (a
    cleared one empty)."""
    values = _values(contact, _ShopDays(timezone))
    return {
        name: "" if value is None else value
        for name, value in zip(_layout(prefix).names, values, strict=True)
    }


class SubscriberFields(NamedTuple):
    """A subscriber's ``custom_fields`` object and an upper bound of its size by Ecomail's
    rule, gathered while it was built: measuring every subscriber of an export by
    serializing it cost a third as much as encoding the whole body."""

    fields: dict[str, Any]
    size_bound: int


class FieldsBuilder:
    """Builds the ``custom_fields`` of one call's subscribers under one prefix and time zone."""

    def __init__(self, prefix: str, timezone: tzinfo) -> None:
        self._layout = _layout(prefix)
        self._days = _ShopDays(timezone)

    def __call__(self, contact: Contact) -> SubscriberFields:
        """One subscriber's ``custom_fields``, typed where the type matters; an empty typed
        value clears the field, and is sent typed so a first write makes it a date."""
        layout = self._layout
        values = _values(contact, self._days)
        fields: dict[str, Any] = dict(zip(layout.names, values, strict=True))
        for name, kind in layout.typed:
            fields[name] = {"value": fields[name], "type": kind}
        characters = sum(map(len, layout.texts(values)))
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
