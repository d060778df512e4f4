"""The Dotdigital data fields pointbridge writes, and their values for one contact.

Dotdigital data field names are at most 20 characters of ``[A-Za-z0-9_-]`` and are shown in
upper case, so the integration's field prefix (``ellity_``) becomes ``ELLITY_`` and the suffixes
are kept short enough for the legacy ``mehub_`` and the default ``ellity_`` prefixes alike.
"""

from __future__ import annotations

import re
from typing import Any

from pointbridge import Contact, Integration, MembershipState
from pointbridge.kit.field_names import prefixed_names
from pointbridge.kit.fields import FieldSpec, installed_only

# ``field_preset`` -> its fixed field prefix (None: the integration's); "smile" is Smile.io's.
PRESETS = {"": None, "smile": "SMILE_"}

# pointbridge's key -> (the name after the prefix, Dotdigital's v2 data field type: String |
# Numeric | Date | Boolean) under each preset, in the order of PRESETS; None where the preset
# has no such field. Suffixes stay within 12 characters, so the 20-character names still take
# the 8-character prefixes (``ELLITY_``, ``MEHUB_``).
FIELDS: dict[str, tuple[tuple[str, str], tuple[str, str] | None]] = {
    "points": (("POINTS", "Numeric"), ("POINTS_BALANCE", "Numeric")),
    "referral_url": (("REFERRAL_URL", "String"), ("REFERRAL_URL", "String")),
    "state": (("STATE", "String"), ("STATE", "String")),
    "tier_name": (("TIER_NAME", "String"), ("VIP_TIER_NAME", "String")),
    "tier_id": (("TIER_ID", "String"), ("VIP_TIER_ID", "Numeric")),
    # Smile's integration documents none of these: under its preset they are not written,
    # so the account gets no SMILE_* field Smile never had.
    "lifetime_points": (("LIFETIME_PTS", "Numeric"), None),
    "tier_expires_at": (("TIER_EXPIRES", "Date"), None),
    "points_to_next_tier": (("TO_NEXT_TIER", "Numeric"), None),
}

# Smile's customer states. pointbridge excludes nobody, so Smile's "disabled" never goes out.
SMILE_STATES = {MembershipState.MEMBER: "member", MembershipState.GUEST: "candidate"}

# Every Dotdigital account starts with these contact data fields; names are sent only when the
# account still has them (install records which), so a deleted FIRSTNAME never fails a sync.
NAME_FIELDS = {"first_name": "FIRSTNAME", "last_name": "LASTNAME"}


def field_specs(integration: Integration) -> dict[str, FieldSpec]:
    """pointbridge key -> the data field it is written to, under the integration's
    ``field_preset`` (or a ``PermanentError`` telling what to fix in the field prefix)."""
    preset = str(integration.settings.get("field_preset") or "")
    column = list(PRESETS).index(preset)
    fields = {key: field for key, presets in FIELDS.items() if (field := presets[column])}
    names = prefixed_names(
        PRESETS[preset] or integration.field_prefix,
        {key: suffix for key, (suffix, _) in fields.items()},
        platform="Dotdigital",
        max_length=20,
        allowed=re.compile(r"[A-Za-z0-9_-]*"),
        allowed_text="letters, digits, '_' and '-'",
        case=str.upper,
    )
    return {key: FieldSpec(names[key], type_) for key, (_, type_) in fields.items()}


def written_specs(integration: Integration) -> dict[str, FieldSpec]:
    """The ``field_specs`` a contact write fills: those install recorded, by key."""
    return installed_only(field_specs(integration), integration.data.get("fields"))


def data_field_values(
    contact: Contact, specs: dict[str, FieldSpec], name_fields: list[str], smile: bool
) -> dict[str, Any]:
    """The ``dataFields`` object of a v3 contact for this snapshot: the fields ``specs``
    names, and the account's name fields in ``name_fields``.

    ``None`` is sent on purpose for a tier, referral URL or tier progress the customer no
    longer has: a data field sent as ``null`` is cleared (Dotdigital's import and PATCH docs),
    where ``""`` would be stored as an empty string and match "is not empty" segments. The
    tier's end is a calendar day, written as ISO 8601 ``YYYY-MM-DD`` as the shop set it: a day
    has no time to move into the shop's zone. With ``smile`` (the preset) the state is
    Smile's and the tier id a number; one that is not a whole number is cleared and the tier
    name still goes, where refusing the contact would hold back its points too.
    """
    tier_id: str | int | None = contact.tier_id or None
    if smile:  # 15 digits still round-trip through a Numeric field's double
        tier_id = int(tier_id) if tier_id and re.fullmatch(r"[0-9]{1,15}", tier_id) else None
    state = SMILE_STATES[contact.membership] if smile else contact.membership.value
    expires = contact.tier_expires_at
    by_key: dict[str, Any] = {
        "points": contact.points,
        "referral_url": contact.referral_link or None,
        "state": state,
        "tier_name": contact.tier_name or None,
        "tier_id": tier_id,
        "lifetime_points": contact.lifetime_points,
        "tier_expires_at": expires.isoformat() if expires else None,
        "points_to_next_tier": contact.points_to_next_tier,
    }
    values = {spec.name: by_key[key] for key, spec in specs.items()}
    # Names are only ever filled in, never blanked: the shop or another integration may own them.
    for attribute, field in NAME_FIELDS.items():
        value = getattr(contact, attribute)
        if field in name_fields and value:
            values[field] = value
    return values
