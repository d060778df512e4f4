"""Contact sync: new contacts in bulk, the ones Splio has by one PATCH each.

Splio's bulk endpoint creates and never updates: a contact that exists comes back as a 400 item
"Contact with unique key … already exists" and has to be updated alone with
``PATCH /data/contacts/{email}``. The contacts Splio confirmed it has
(``pointbridge.known_contacts``) skip the bulk call and are PATCHed straight away. The PATCH
carries ``custom_fields`` only: ``lists`` there replaces every list membership the contact has,
and names belong to the shop's own sync.
So only a contact pointbridge creates can join the ``list_id`` list, and only with marketing
consent: Splio cannot tell a contact who left the list from one never on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pointbridge import (
    ConfigurationError,
    Contact,
    Integration,
    ItemFailure,
    PermanentError,
    TransientError,
    send_each,
)
from pointbridge.kit.outage import FailureStreak
from pointbridge_splio.client import BULK_MAX, SplioClient, splio_error, splio_errors
from pointbridge_splio.fields import custom_fields

FIELDS_BROKEN = (
    "Splio refused the loyalty fields ({detail}). A field was probably deleted or its type "
    "changed in Splio: give it back its type (or delete it), then reinstall the integration."
)

# After this many timeouts/5xx in a row the remaining updates are handed back at once instead
# of each waiting out its own timeout against a platform that is down.
MAX_CONSECUTIVE_TRANSIENT = 3
UNMENTIONED = "Splio's answer to the bulk create did not mention this contact."


class ContactSync:
    """One ``push_contact`` call: the batch's creates, then its updates."""

    def __init__(self, client: SplioClient, integration: Integration) -> None:
        self.client = client
        self.known = client.known
        self.prefix = integration.field_prefix
        # The fields install recorded: an integration installed before one was added to
        # pointbridge writes the others until it is installed again.
        self.field_ids: Mapping[str, Any] | None = integration.data.get("fields")
        self.list_id: int | None = integration.settings.get("list_id")
        self.streak = FailureStreak(MAX_CONSECUTIVE_TRANSIENT)

    def push(self, contacts: Sequence[Contact]) -> list[ItemFailure]:
        # Creates go first (one bulk call: the host sends at most max_batch, 1,000): a 429
        # there stops the call before anything was written, and the whole batch waits.
        new = [c for c in contacts if c.email not in self.known]
        to_update = [c for c in contacts if c.email in self.known]
        failures: list[ItemFailure] = []
        for start in range(0, len(new), BULK_MAX):
            existing, refused = self.create(new[start : start + BULK_MAX])
            to_update.extend(existing)
            failures.extend(refused)
        updates = send_each(
            to_update, self.update, key=lambda c: c.customer_id, looks_down=self.streak
        )
        return failures + updates

    def fields(self, contact: Contact, *, creating: bool) -> list[dict[str, Any]]:
        return custom_fields(contact, self.prefix, self.field_ids, creating=creating)

    def create_payload(self, contact: Contact) -> dict[str, Any]:
        names = {"firstname": contact.first_name, "lastname": contact.last_name}
        payload = {"email": contact.email, **{k: v for k, v in names.items() if v}}
        if contact.marketing_consent and self.list_id is not None:
            payload["lists"] = [{"id": self.list_id}]
        return {**payload, "custom_fields": self.fields(contact, creating=True)}

    def create(self, chunk: Sequence[Contact]) -> tuple[list[Contact], list[ItemFailure]]:
        """Bulk-create ``chunk``: the contacts Splio already had, and those that failed."""
        answers: dict[str, Mapping[str, Any]] = {}
        for item in self.client.bulk_create([self.create_payload(c) for c in chunk]):
            answers.setdefault(str(item.get("contact_id")), item)
        existing: list[Contact] = []
        failures: list[ItemFailure] = []
        field_errors: list[str] = []
        for contact in chunk:
            item = answers.get(contact.email)
            if item is None:
                failures.append(ItemFailure(contact.customer_id, TransientError(UNMENTIONED)))
                continue
            code = item.get("code") if isinstance(item.get("code"), int) else 0
            description = str(item.get("description") or "").strip()
            if 200 <= code < 300 or "already exists" in description.lower():
                self.known.add(contact.email)
                if code >= 300:
                    existing.append(contact)
                continue
            reason = f"{code}: {description or 'no reason given'}"
            error: TransientError | PermanentError
            if code in (0, 408, 429) or code >= 500:
                error = TransientError(f"Splio could not create the contact now ({reason}).")
            else:
                if "custom field" in description.lower() or "custom_field" in description.lower():
                    field_errors.append(description)
                error = PermanentError(f"Splio refused the contact ({reason}).")
            failures.append(ItemFailure(contact.customer_id, error))
        if field_errors and len(failures) + len(existing) == len(chunk):
            # Every contact gets the same fields: when none could be created and Splio blames a
            # custom field, the set-up is broken, not the contacts. Pause rather than dead-letter.
            raise ConfigurationError(FIELDS_BROKEN.format(detail=field_errors[0]))
        return existing, failures

    def update(self, contact: Contact) -> None:
        """PATCH one contact; a contact deleted in Splio since is created again."""
        body = {"custom_fields": self.fields(contact, creating=False)}
        with self.streak.watch():
            response = self.client.update_contact(contact.email, body)
        if response.status_code == 404:
            self.known.discard(contact.email)
            self.create_again(contact)
        elif response.ok:
            self.known.add(contact.email)
        elif any(e.get("error_key") == "custom_fields" for e in splio_errors(response)):
            raise ConfigurationError(FIELDS_BROKEN.format(detail=splio_error(response)))
        else:
            raise PermanentError(f"Splio refused the update ({splio_error(response)}).")

    def create_again(self, contact: Contact) -> None:
        existing, failures = self.create([contact])
        if failures:
            raise failures[0].error
        if existing:
            # Missing for the PATCH, there again for the create: someone else is at work on it.
            raise TransientError("Splio reported the contact both missing and existing.")
