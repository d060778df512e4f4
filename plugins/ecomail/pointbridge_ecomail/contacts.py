"""``push_contact``: loyalty fields into the chosen list through ``subscribe-bulk``."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from pointbridge import (
    ConfigurationError,
    Contact,
    Integration,
    ItemFailure,
    PermanentError,
    hookimpl,
)
from pointbridge.kit.halving import refused_alone
from pointbridge.kit.http import ApiClient, error_summary
from pointbridge_ecomail import client
from pointbridge_ecomail.client import BULK_MAX, BULK_TIMEOUT
from pointbridge_ecomail.fields import CUSTOM_FIELDS_MAX_CHARS, FieldsBuilder, oversize


def subscriber(contact: Contact, fields: dict[str, Any]) -> dict[str, Any]:
    """One ``subscriber_data`` item; names only when known, so that a name the customer gave
    Ecomail is never blanked out."""
    item: dict[str, Any] = {"email": contact.email.strip()}
    if contact.first_name:
        item["name"] = contact.first_name
    if contact.last_name:
        item["surname"] = contact.last_name
    item["custom_fields"] = fields
    return item


@hookimpl
def push_contact(integration: Integration, contacts: Sequence[Contact]) -> list[ItemFailure]:
    list_id = integration.settings.get("list_id")
    if list_id is None:
        # Nothing can be sent until an admin picks one: the integration pauses, rows wait.
        raise ConfigurationError(
            "No Ecomail list is chosen: set list_id (install lists the account's lists)."
        )
    api = client.api(integration)
    failures: list[ItemFailure] = []
    ready: list[tuple[Contact, dict[str, Any]]] = []
    custom_fields = FieldsBuilder(integration.field_prefix, integration.timezone)
    for contact in contacts:
        built = custom_fields(contact)
        size = oversize(built)
        if size is not None:
            why = (
                f"its loyalty fields take {size} characters; Ecomail takes at most "
                f"{CUSTOM_FIELDS_MAX_CHARS} (is the referral link unusually long?)"
            )
            failures.append(_refused(contact, why))
        else:
            ready.append((contact, subscriber(contact, built.fields)))
    # The host sends at most max_batch (= BULK_MAX) contacts, but a caller that sends more must
    # not lose the tail to Ecomail's silent cut-off.
    for start in range(0, len(ready), BULK_MAX):
        chunk = ready[start : start + BULK_MAX]
        # Without consent a subscriber new to the list joins it unsubscribed: an item's status
        # is the only way, and sent with update_existing off it changes nobody already there.
        # The upsert then finds them in the list and, not resubscribing, keeps that status.
        quiet = [
            (c, {**item, "status": UNSUBSCRIBED}) for c, item in chunk if not c.marketing_consent
        ]
        refused = refused_alone(quiet, partial(_upsert, api, list_id, update_existing=False))
        barred = {c.customer_id for (c, _), _ in refused}
        chunk = [(c, item) for c, item in chunk if c.customer_id not in barred]
        refused += refused_alone(chunk, partial(_upsert, api, list_id, update_existing=True))
        failures.extend(_refused(c, f"Ecomail rejected it: {why}") for (c, _), why in refused)
    return failures


def _upsert(
    api: ApiClient, list_id: int, batch: Sequence[tuple[Contact, Any]], *, update_existing: bool
) -> str | None:
    """``subscribe-bulk``: add (and with ``update_existing`` update) subscribers without
    resubscribing anyone or sending confirmation mails; the refusal.

    Ecomail answers with a count, not per-item results, so a 400/422 for one bad subscriber
    refuses the whole call: ``refused_alone`` halves it until the bad ones are alone (the
    good ones sent again are upserts).
    """
    payload = {
        "subscriber_data": [item for _, item in batch],
        "update_existing": update_existing,
        "resubscribe": False,
        "trigger_autoresponders": False,
        # Bulk always skips double opt-in per the docs; said anyway in case that changes.
        "skip_confirmation": True,
    }
    response = api.post(
        f"lists/{list_id}/subscribe-bulk",
        json=payload,
        timeout=BULK_TIMEOUT,
        passthrough=(400, 422),
    )
    return None if response.ok else error_summary(response)


# Ecomail's subscriber status "unsubscribed": in the list with its fields, sent no campaigns.
UNSUBSCRIBED = 2


def _refused(contact: Contact, why: str) -> ItemFailure:
    return ItemFailure(
        contact.customer_id, PermanentError(f"Customer {contact.customer_id}: {why}")
    )
