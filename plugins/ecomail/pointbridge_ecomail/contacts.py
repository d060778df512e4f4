"""``push_contact``: loyalty fields into the chosen list through ``subscribe-bulk``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pointbridge import Contact, Integration, ItemFailure, PermanentError, hookimpl
from pointbridge.http import ApiClient, error_summary
from pointbridge_ecomail import client
from pointbridge_ecomail.client import BULK_MAX
from pointbridge_ecomail.fields import CUSTOM_FIELDS_MAX_CHARS, custom_fields, custom_fields_size

Ready = list[tuple[Contact, dict[str, Any]]]


def subscriber(prefix: str, contact: Contact) -> dict[str, Any]:
    """One ``subscriber_data`` item.

    Names are sent only when known, so a name the customer gave Ecomail is never blanked out.
    """
    item: dict[str, Any] = {"email": contact.email.strip()}
    if contact.first_name:
        item["name"] = contact.first_name
    if contact.last_name:
        item["surname"] = contact.last_name
    item["custom_fields"] = custom_fields(prefix, contact)
    return item


@hookimpl
def push_contact(integration: Integration, contacts: Sequence[Contact]) -> list[ItemFailure]:
    list_id = client.chosen_list(integration)
    api = client.api(integration)
    failures: list[ItemFailure] = []
    ready: Ready = []
    for contact in contacts:
        item = subscriber(integration.field_prefix, contact)
        size = custom_fields_size(item["custom_fields"])
        if size > CUSTOM_FIELDS_MAX_CHARS:
            why = (
                f"its loyalty fields take {size} characters; Ecomail takes at most "
                f"{CUSTOM_FIELDS_MAX_CHARS} (is the referral link unusually long?)"
            )
            failures.append(_refused(contact, why))
        else:
            ready.append((contact, item))
    # The host sends at most max_batch (= BULK_MAX) contacts, but a caller that sends more must
    # not lose the tail to Ecomail's silent cut-off.
    for start in range(0, len(ready), BULK_MAX):
        failures.extend(_send(api, list_id, ready[start : start + BULK_MAX]))
    return failures


def _send(api: ApiClient, list_id: str, batch: Ready) -> list[ItemFailure]:
    """Send a batch; when Ecomail rejects it as a whole, halve it until the bad items are alone.

    Ecomail answers a bulk call with a count, not per-item results, so a validation error on one
    subscriber would otherwise sink the other 2,999. Re-sending the good halves is safe: upserts.
    """
    if not batch:
        return []
    response = client.subscribe_bulk(api, list_id, [item for _, item in batch])
    if response.ok:
        return []
    if len(batch) == 1:
        return [_refused(batch[0][0], f"Ecomail rejected it: {error_summary(response)}")]
    middle = len(batch) // 2
    return _send(api, list_id, batch[:middle]) + _send(api, list_id, batch[middle:])


def _refused(contact: Contact, why: str) -> ItemFailure:
    return ItemFailure(
        contact.customer_id, PermanentError(f"Customer {contact.customer_id}: {why}")
    )
