"""Contact sync: bulk create, then one PATCH per contact Splio already had.

Splio's bulk endpoint creates and never updates: a contact that exists comes back as a 400 item
"Contact with unique key … already exists" and has to be updated alone with
``PATCH /data/contacts/{email}``. The PATCH carries ``custom_fields`` only: ``lists`` there
replaces every list membership the contact has, and names belong to the shop's own sync.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pointbridge import (
    ConfigurationError,
    Contact,
    Integration,
    ItemFailure,
    PermanentError,
    RateLimited,
    TransientError,
)
from pointbridge_splio.client import BULK_MAX, SplioClient, splio_error
from pointbridge_splio.fields import custom_fields

log = logging.getLogger(__name__)

FIELDS_BROKEN = (
    "Splio refused the loyalty fields ({detail}). A field was probably deleted or its type "
    "changed in Splio: give it back its type (or delete it), then reinstall the integration."
)

# After this many timeouts/5xx in a row the remaining updates are handed back at once instead
# of each waiting out its own timeout against a platform that is down.
MAX_CONSECUTIVE_TRANSIENT = 3


def _chunks(items: Sequence[Contact], size: int) -> Iterator[Sequence[Contact]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _key(email: str) -> str:
    return email.strip().lower()


def create_payload(contact: Contact, prefix: str, field_ids: Mapping[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = {"email": contact.email.strip()}
    if contact.first_name:
        payload["firstname"] = contact.first_name
    if contact.last_name:
        payload["lastname"] = contact.last_name
    payload["custom_fields"] = custom_fields(contact, prefix, field_ids, creating=True)
    return payload


def update_payload(contact: Contact, prefix: str, field_ids: Mapping[str, Any]) -> dict[str, Any]:
    return {"custom_fields": custom_fields(contact, prefix, field_ids, creating=False)}


def push_contacts(
    client: SplioClient,
    integration: Integration,
    contacts: Sequence[Contact],
) -> list[ItemFailure]:
    prefix = integration.field_prefix
    field_ids: Mapping[str, Any] = (integration.data or {}).get("fields") or {}
    failures: list[ItemFailure] = []

    first: dict[str, Contact] = {}
    repeats: list[Contact] = []
    for contact in contacts:
        if not (contact.email or "").strip():
            failures.append(
                ItemFailure(
                    contact.customer_id,
                    PermanentError("The customer has no e-mail address, which Splio needs."),
                )
            )
        elif _key(contact.email) in first:
            # Two customers with one address: the second can only be an update.
            repeats.append(contact)
        else:
            first[_key(contact.email)] = contact

    to_update: list[Contact] = []
    for chunk in _chunks(list(first.values()), BULK_MAX):
        items = client.bulk_create([create_payload(c, prefix, field_ids) for c in chunk])
        existing, chunk_failures = _read_bulk_items(chunk, items)
        to_update.extend(existing)
        failures.extend(chunk_failures)
    to_update.extend(repeats)

    failures.extend(_update_each(client, to_update, prefix, field_ids))
    return failures


def _read_bulk_items(
    chunk: Sequence[Contact], items: Sequence[Mapping[str, Any]]
) -> tuple[list[Contact], list[ItemFailure]]:
    by_key = {_key(c.email): c for c in chunk}
    reported: set[str] = set()
    existing: list[Contact] = []
    failures: list[ItemFailure] = []
    created = 0
    field_errors: list[str] = []
    for item in items:
        key = _key(str(item.get("contact_id") or ""))
        contact = by_key.get(key)
        if contact is None or key in reported:
            continue
        reported.add(key)
        try:
            code = int(item.get("code") or 0)
        except (TypeError, ValueError):
            code = 0
        description = str(item.get("description") or "").strip()
        if 200 <= code < 300:
            created += 1
            continue
        if "already exists" in description.lower():
            existing.append(contact)
        elif code in (408, 429) or code >= 500 or code == 0:
            failures.append(
                ItemFailure(
                    contact.customer_id,
                    TransientError(
                        f"Splio could not create the contact now ({code}: "
                        f"{description or 'no reason given'})."
                    ),
                )
            )
        else:
            if "custom field" in description.lower() or "custom_field" in description.lower():
                field_errors.append(description)
            failures.append(
                ItemFailure(
                    contact.customer_id,
                    PermanentError(
                        f"Splio refused the contact ({code}: {description or 'no reason given'})."
                    ),
                )
            )
    if field_errors and created == 0:
        # Every contact gets the same fields: when none could be created and Splio blames a
        # custom field, the set-up is broken, not the contacts. Pause rather than dead-letter.
        raise ConfigurationError(FIELDS_BROKEN.format(detail=field_errors[0]))
    for key, contact in by_key.items():
        if key not in reported:
            failures.append(
                ItemFailure(
                    contact.customer_id,
                    TransientError(
                        "Splio's answer to the bulk create did not mention this contact."
                    ),
                )
            )
    return existing, failures


def _update_each(
    client: SplioClient,
    contacts: Sequence[Contact],
    prefix: str,
    field_ids: Mapping[str, Any],
) -> list[ItemFailure]:
    failures: list[ItemFailure] = []
    consecutive_transient = 0
    for index, contact in enumerate(contacts):
        # The client paces every request under Splio's 20/s on data/contacts.
        try:
            response = client.update_contact(
                contact.email.strip(), update_payload(contact, prefix, field_ids)
            )
        except RateLimited as exc:
            # Raising would make the host redo the updates already done; hand back only the
            # rest, each to be retried on its own.
            wait = f" in {exc.retry_after:g} s" if exc.retry_after is not None else ""
            log.info("Splio rate limit after %d of %d contact updates", index, len(contacts))
            failures.extend(
                ItemFailure(
                    rest.customer_id,
                    TransientError(f"Splio's rate limit was reached; retry{wait}."),
                )
                for rest in contacts[index:]
            )
            break
        except TransientError as exc:
            failures.append(ItemFailure(contact.customer_id, exc))
            consecutive_transient += 1
            if consecutive_transient >= MAX_CONSECUTIVE_TRANSIENT:
                failures.extend(
                    ItemFailure(
                        rest.customer_id,
                        TransientError("Splio stopped answering; not tried this time."),
                    )
                    for rest in contacts[index + 1 :]
                )
                break
            continue
        except PermanentError as exc:
            consecutive_transient = 0
            failures.append(ItemFailure(contact.customer_id, exc))
            continue
        consecutive_transient = 0
        if response.status_code == 404:
            # It existed a moment ago (bulk said so); deleted since, the next try creates it.
            failures.append(
                ItemFailure(
                    contact.customer_id,
                    TransientError(f"Splio no longer finds the contact ({splio_error(response)})."),
                )
            )
        elif not response.ok and _blames_custom_fields(response):
            raise ConfigurationError(FIELDS_BROKEN.format(detail=splio_error(response)))
        elif not response.ok:
            failures.append(
                ItemFailure(
                    contact.customer_id,
                    PermanentError(f"Splio refused the update ({splio_error(response)})."),
                )
            )
    return failures


def _blames_custom_fields(response: Any) -> bool:
    try:
        errors = response.json().get("errors") or []
    except (ValueError, AttributeError):
        return False
    return any(isinstance(e, dict) and e.get("error_key") == "custom_fields" for e in errors)
