"""pointbridge plugin for SmartEmailing (API v3): loyalty fields, custom events, list webhooks."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from marshmallow import Schema, fields

from pointbridge import (
    Capability,
    ChoiceRequired,
    Contact,
    Event,
    InstallResult,
    Integration,
    ItemFailure,
    PermanentError,
    Platform,
    RateLimit,
    hookimpl,
)
from pointbridge.kit import setting_fields
from pointbridge.kit.bulk import failures_unnamed
from pointbridge.kit.fields import EnsuredFields, ExistingField, ensure_fields
from pointbridge.kit.http import ApiClient
from pointbridge_smartemailing import client
from pointbridge_smartemailing.client import DEFAULT_API_URL, MAX_EVENTS, MAX_IMPORT
from pointbridge_smartemailing.mapping import import_item, trigger_item, wanted_fields
from pointbridge_smartemailing.webhooks import handle_webhook, webhook_bodies


class SmartEmailingSettings(Schema):
    username = fields.Email(
        required=True,
        metadata={
            "description": "Login e-mail of the SmartEmailing account: the one shown above "
            "'Create API key' in SmartEmailing's API settings."
        },
    )
    api_key = setting_fields.secret("API key from SmartEmailing's API settings.")
    api_url = setting_fields.api_url(
        DEFAULT_API_URL, "SmartEmailing API address; change only for testing."
    )
    contact_list_id = setting_fields.optional_id(
        "Optional: ID of a SmartEmailing contact list every synced customer is added to (as "
        "confirmed). Contacts who unsubscribed stay unsubscribed."
    )


@hookimpl
def register_platforms(register: Callable[[Platform], None]) -> None:
    register(
        Platform(
            name="smartemailing",
            title="SmartEmailing",
            settings_schema=SmartEmailingSettings,
            capabilities=frozenset({Capability.EVENTS, Capability.WEBHOOKS}),
            max_batch=MAX_IMPORT,
            max_event_batch=MAX_EVENTS,
            # SmartEmailing publishes no rate limit. 5 requests a second is a guess on the safe
            # side: at 500 contacts an import call it still moves 2,500 contacts a second, more
            # than the API's own latency allows, so the cap costs nothing when it is healthy.
            rate_limit=RateLimit(calls=5, per_seconds=1.0),
            # Every synced customer is added to this list: a "change in list" automation on it
            # fires for pointbridge's own imports as well, so it must not carry a reward.
            written_lists=setting_fields.written_list("contact_list_id"),
            target_settings=("api_url", "username", "contact_list_id"),
            webhook_bodies=webhook_bodies,
            description="SmartEmailing: loyalty custom fields, custom events for automations, "
            "list subscription webhooks.",
        )
    )


class LearntFieldIds(dict[str, dict[str, int]]):
    """Field ids by prefix, learnt in this process: saves a lookup per batch when the host's
    stored install data is missing or stale (fields recreated by hand, prefix changed)."""


def _ensure_fields(api: ApiClient, integration: Integration) -> EnsuredFields:
    """Reuse the loyalty fields the account has, create the rest, and remember their ids."""
    # Newest first: of two fields of one name ensure_fields reuses the one listed last, so the
    # oldest is kept, every run picks the same one and data never splits.
    listed = sorted(client.paged(api, "customfields"), key=lambda f: -int(f["id"]))
    ensured = ensure_fields(
        wanted_fields(integration.field_prefix),
        [ExistingField(f["name"], f.get("type", ""), int(f["id"])) for f in listed],
        lambda spec: client.create_customfield(api, spec),
        # Names match exactly: whether SmartEmailing tells "Ellity_pin" from "ellity_pin" is
        # undocumented, and reusing a field the shop made for something else would be worse.
        same_name=str,
    )
    integration.state(LearntFieldIds)[integration.field_prefix] = ensured.ids
    return ensured


def _field_ids(api: ApiClient, integration: Integration) -> dict[str, int]:
    """The ids learnt in this process, else those install stored if they name every field (the
    names carry the prefix), else the fields found or made again now."""
    learnt = integration.state(LearntFieldIds).get(integration.field_prefix)
    stored = integration.data.get("customfields") or {}
    names = [spec.name for spec in wanted_fields(integration.field_prefix)]
    if learnt is None and set(names) <= set(stored):
        learnt = {name: int(stored[name]) for name in names}
    return learnt or _ensure_fields(api, integration).ids


@hookimpl
def install(integration: Integration) -> InstallResult:
    api = client.api(integration)
    client.check_credentials(api)
    list_id = integration.settings.get("contact_list_id")
    if list_id is not None:
        lists = {str(item["id"]): item.get("name") for item in client.paged(api, "contactlists")}
        if str(list_id) not in lists:
            raise ChoiceRequired(
                "contact_list_id",
                [(key, str(name or key)) for key, name in lists.items()],
                f"SmartEmailing has no contact list with ID {list_id}: pick one below, or leave "
                "the setting empty to sync fields without adding contacts to any list.",
            )
    ensured = _ensure_fields(api, integration)
    summary = f"{len(ensured.created)} custom fields created, {len(ensured.existing)} reused."
    return InstallResult(
        created=ensured.created,
        existing=ensured.existing,
        data={"customfields": ensured.ids, "field_prefix": integration.field_prefix},
        message=" ".join([summary, *ensured.warnings]),
    )


@hookimpl
def push_contact(integration: Integration, contacts: Sequence[Contact]) -> list[ItemFailure]:
    api = client.api(integration)
    list_id = integration.settings.get("contact_list_id")

    def send(ids: Mapping[str, int]) -> dict[str, Any]:
        items = [
            import_item(c, integration.field_prefix, ids, list_id, integration.timezone)
            for c in contacts
        ]
        return client.import_contacts(api, items)

    ids = _field_ids(api, integration)
    try:
        body = send(ids)
    except PermanentError:
        # The usual cause of a whole-batch 422 we can fix ourselves: a field deleted (and maybe
        # recreated) in SmartEmailing since install. Look the ids up again and retry once.
        fresh = _ensure_fields(api, integration).ids
        if fresh == ids:
            raise
        body = send(fresh)
    contacts_map = body.get("contacts_map")
    if not isinstance(contacts_map, list):
        return []
    # skip_invalid_emails drops addresses SmartEmailing refuses without failing the call; the
    # contacts_map lists those it took, so whoever is missing was skipped.
    return failures_unnamed(
        contacts,
        [str(entry.get("emailaddress", "")) for entry in contacts_map if isinstance(entry, dict)],
        lambda contact: PermanentError(
            f"SmartEmailing skipped {contact.email!r}: it considers the address invalid."
        ),
    )


@hookimpl
def emit_event(integration: Integration, events: Sequence[Event]) -> list[ItemFailure]:
    # trigger-event creates an unknown contact, so no event waits for its contact.
    items = [trigger_item(event, integration.field_prefix) for event in events]
    client.api(integration).post("trigger-event", json=items)
    return []


__all__ = ["emit_event", "handle_webhook", "install", "push_contact", "register_platforms"]
