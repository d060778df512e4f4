"""Which SmartEmailing custom fields pointbridge writes; how contacts and events map onto them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import tzinfo
from typing import Any

from pointbridge import Contact, Event, loyalty_fields
from pointbridge.contract.events import event_name
from pointbridge.kit.fields import FieldSpec

# Loyalty catalog key -> SmartEmailing customfield type. SmartEmailing's documented types are
# text, textarea, date, checkbox, radio and select: no numeric type is confirmed, so credit_num
# is text as well (the README says so). registered stays text ("1"/"0") because checkbox fields
# take option ids, not values.
FIELD_TYPES: Mapping[str, str] = {
    "credit": "text",
    "credit_num": "text",
    "pin": "text",
    "registered": "text",
    "next_expiration_date": "date",
    "next_expiration_value": "text",
    "last_change_date": "date",
    "last_change_value": "text",
    "referral_code": "text",
    "referral_link": "text",
    "lifetime_points": "text",
    "tier_expires_at": "date",
    "points_to_next_tier": "text",
}


def wanted_fields(prefix: str) -> list[FieldSpec]:
    """The custom fields pointbridge writes, named for this integration's prefix."""
    return [FieldSpec(prefix + key, type_) for key, type_ in FIELD_TYPES.items()]


def customfield_values(
    contact: Contact, prefix: str, ids: Mapping[str, int], timezone: tzinfo
) -> list[dict[str, Any]]:
    """The ``customfields`` list of one import item: every loyalty field, by SmartEmailing id."""
    # Date fields take "YYYY-MM-DD HH:MM:SS" as the shop's clock reads, no offset.
    values = loyalty_fields(contact, timezone)
    # An empty string is no date; null clears a date field instead of failing the import.
    return [
        {"id": ids[prefix + key], "value": str(values[key]) or (None if type_ == "date" else "")}
        for key, type_ in FIELD_TYPES.items()
    ]


def import_item(
    contact: Contact,
    prefix: str,
    ids: Mapping[str, int],
    contact_list_id: int | None,
    timezone: tzinfo,
) -> dict[str, Any]:
    """One contact as SmartEmailing's ``import`` takes it."""
    item: dict[str, Any] = {"emailaddress": contact.email.strip()}
    # Names are sent only when known: an empty value would wipe what the shop already has there.
    if contact.first_name:
        item["name"] = contact.first_name
    if contact.last_name:
        item["surname"] = contact.last_name
    item["customfields"] = customfield_values(contact, prefix, ids, timezone)
    # Without consent no list is named: the contact and its fields are stored, subscribed to
    # nothing, and a status it has on the list is left as it is (SmartEmailing has no
    # non-marketing list status). With consent, preserve_unsubscribed in the import settings
    # keeps a contact who unsubscribed unsubscribed.
    if contact_list_id is not None and contact.marketing_consent:
        item["contactlists"] = [{"id": contact_list_id, "status": "confirmed"}]
    return item


def event_payload(event: Event) -> dict[str, Any]:
    """The ``payload`` an automation can read: the event's data, the expiry date under the name
    the README documents."""
    payload = dict(event.data)
    if "expires_on" in payload:
        payload["expiration_date"] = str(payload.pop("expires_on"))
    return payload


def trigger_item(event: Event, prefix: str) -> dict[str, Any]:
    # trigger-event takes no id of its own (only emailaddress, name and payload), so the id
    # rides in the payload: the same on every redelivery, for an automation to recognise.
    return {
        "emailaddress": event.email.strip(),
        "name": event_name(prefix, event.type),
        "payload": {**event_payload(event), "event_id": event.uid},
    }
