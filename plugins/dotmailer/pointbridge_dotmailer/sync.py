"""Writing contacts to Dotdigital: one contact by PATCH, a batch by an asynchronous v3 import.

Both are upserts keyed by e-mail with ``overwrite``, so a retried batch does no harm. An
existing contact is never sent ``channelProperties``: its subscription status and opt-in type
stay as they are (no resubscribing someone who unsubscribed, no double opt-in e-mail). A new
contact left without them comes out ``subscribed``, so that is only for customers with
marketing consent; one without consent is created ``unsubscribed`` (e-mail has no status
"neither" in v3), which takes knowing first whether the address exists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pointbridge import Contact, Integration, ItemFailure, PermanentError, TransientError, hookimpl
from pointbridge.kit.bulk import failures_by_email
from pointbridge.kit.http import error_summary
from pointbridge.known_contacts import KnownContacts
from pointbridge_dotmailer.client import (
    DotdigitalClient,
    import_rejected,
    is_data_field_error,
    regional_client,
)
from pointbridge_dotmailer.fields import data_field_values, written_specs

# Import statuses that only an admin can resolve.
OUTCOMES = {
    "RejectedByWatchdog": "Dotdigital's import watchdog rejected the batch (it checks imports "
    "for signs of bought or poor-quality lists); ask Dotdigital support to review import "
    "{import_id}.",
    "ExceedsAllowedContactLimit": "The Dotdigital account has reached its contact limit; raise "
    "the limit with Dotdigital, then replay the failed deliveries.",
}


@hookimpl
def push_contact(integration: Integration, contacts: Sequence[Contact]) -> list[ItemFailure]:
    client = regional_client(integration)
    known = integration.state(KnownContacts)
    specs = written_specs(integration)
    smile = integration.settings.get("field_preset") == "smile"
    name_fields = list(integration.data.get("name_fields", ()))
    # The address book, once the admin has chosen it.
    book = integration.settings.get("address_book_id")
    lists = {"lists": [int(book)]} if book else {}
    rows = [
        {
            "identifiers": {"email": contact.email},
            "dataFields": data_field_values(contact, specs, name_fields, smile=smile),
            **lists,
            **_subscription(client, known, contact),
        }
        for contact in contacts
    ]
    if len(rows) == 1:
        failures = _patch_one(client, contacts[0], rows[0])
    else:
        failures = _import(client, contacts, rows) if rows else []
    refused = {f.key for f in failures}
    for contact in contacts:
        if contact.customer_id not in refused:
            known.add(contact.email)
    return failures


# An opt-in type of "unknown": no opt-in is recorded, and none is asked for by e-mail.
NOT_SUBSCRIBED = {
    "channelProperties": {"email": {"status": "unsubscribed", "optInType": "unknown"}}
}


def _subscription(
    client: DotdigitalClient, known: KnownContacts, contact: Contact
) -> Mapping[str, Any]:
    """The channel status to send: none (Dotdigital's default subscribes a new contact and
    keeps an existing one's status), except for a customer without consent who is not in the
    account yet. Whether the address exists is asked once; what was written since is known."""
    if contact.marketing_consent or contact.email in known:
        return {}
    if client.contact_exists(contact.email):
        known.add(contact.email)
        return {}
    return NOT_SUBSCRIBED


def _patch_one(
    client: DotdigitalClient, contact: Contact, row: Mapping[str, Any]
) -> list[ItemFailure]:
    response = client.upsert_contact(contact.email, row)
    if response.status_code != 400:
        return []
    if is_data_field_error(response):
        # A missing data field fails every contact alike: say so once, for the whole call.
        raise import_rejected(response)
    refused = PermanentError(f"Dotdigital refused {contact.email}: {error_summary(response)}")
    return [ItemFailure(contact.customer_id, refused)]


def _import(
    client: DotdigitalClient, contacts: Sequence[Contact], rows: Sequence[Mapping[str, Any]]
) -> list[ItemFailure]:
    import_id = client.start_import(rows)
    result = client.wait_for_import(import_id)
    status = result.get("status")
    if status in OUTCOMES:
        raise PermanentError(OUTCOMES[status].format(import_id=import_id))
    if status != "Finished":
        # "Failed" and anything unknown: Dotdigital gave no reason, so try the batch again.
        raise TransientError(f"Dotdigital import {import_id} ended with status {status!r}.")
    return _map_failures(contacts, result.get("failures") or [])


def _map_failures(
    contacts: Sequence[Contact], failures: Sequence[Mapping[str, Any]]
) -> list[ItemFailure]:
    """Dotdigital's per-contact failures (named by the identifiers sent), by customer."""
    refused = []
    for failure in failures:
        email = str((failure.get("identifiers") or {}).get("email") or "").strip()
        reasons = "; ".join(
            f"{reason.get('failureCode', '?')}: {reason.get('description', '')}".strip()
            for reason in failure.get("failures") or []
            if isinstance(reason, Mapping)
        )
        why = reasons or "no reason given"
        refused.append((email, PermanentError(f"Dotdigital did not import {email}: {why}")))
    return failures_by_email(contacts, refused)
