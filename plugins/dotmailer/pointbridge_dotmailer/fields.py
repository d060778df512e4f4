"""The Dotdigital data fields pointbridge writes, and their values for one contact.

Dotdigital data field names are at most 20 characters of ``[A-Za-z0-9_-]`` and are shown in
upper case, so the integration's field prefix (``ellity_``) becomes ``ELLITY_`` and the suffixes
are kept short enough for the legacy ``mehub_`` and the default ``ellity_`` prefixes alike.
"""

from __future__ import annotations

import re
from typing import Any

from pointbridge import Contact
from pointbridge.field_names import prefixed_names

# pointbridge's key -> (the name after the prefix, Dotdigital's v2 data field type:
# String | Numeric | Date | Boolean)
FIELDS: dict[str, tuple[str, str]] = {
    "points": ("POINTS", "Numeric"),
    "referral_url": ("REFERRAL_URL", "String"),
    "state": ("STATE", "String"),
    "tier_name": ("TIER_NAME", "String"),
    "tier_id": ("TIER_ID", "String"),
}

# Every Dotdigital account starts with these contact data fields; names are sent only when the
# account still has them (install records which), so a deleted FIRSTNAME never fails a sync.
NAME_FIELDS = {"first_name": "FIRSTNAME", "last_name": "LASTNAME"}


def field_names(prefix: str) -> dict[str, str]:
    """pointbridge key -> Dotdigital data field name, for this prefix (or a ``PermanentError``
    telling what to fix in it)."""
    return prefixed_names(
        prefix,
        {key: suffix for key, (suffix, _) in FIELDS.items()},
        platform="Dotdigital",
        max_length=20,
        allowed=re.compile(r"[A-Za-z0-9_-]*"),
        allowed_text="letters, digits, '_' and '-'",
        case=str.upper,
    )


def data_field_values(
    contact: Contact, names: dict[str, str], name_fields: list[str] | tuple[str, ...] = ()
) -> dict[str, Any]:
    """The ``dataFields`` object of a v3 contact for this snapshot.

    ``None`` is sent on purpose for a tier or referral URL the customer no longer has: a data
    field sent as ``null`` is cleared (Dotdigital's import and PATCH docs), where ``""`` would
    be stored as an empty string and match "is not empty" segments.
    """
    values: dict[str, Any] = {
        names["points"]: contact.points,
        names["referral_url"]: contact.referral_link or None,
        names["state"]: contact.membership.value,
        names["tier_name"]: contact.tier_name or None,
        names["tier_id"]: contact.tier_id or None,
    }
    # Names are only ever filled in, never blanked: the shop or another integration may own them.
    for attribute, field in NAME_FIELDS.items():
        value = getattr(contact, attribute)
        if field in name_fields and value:
            values[field] = value
    return values
