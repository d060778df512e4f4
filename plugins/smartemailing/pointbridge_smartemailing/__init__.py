"""pointbridge plugin for SmartEmailing (API v3): loyalty fields, custom events, list webhooks."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from marshmallow import Schema, fields, pre_load, validate

from pointbridge import (
    Capability,
    ChoiceRequired,
    Contact,
    Event,
    InstallResult,
    Integration,
    ItemFailure,
    ListSubscription,
    PermanentError,
    Platform,
    WebhookRequest,
    hookimpl,
)
from pointbridge_smartemailing.client import (
    DEFAULT_API_URL,
    MAX_EVENTS,
    MAX_IMPORT,
    PLAUSIBLE_EMAIL,
    RATE_LIMIT,
    SmartEmailingClient,
    client_for,
    contact_list_id,
)
from pointbridge_smartemailing.mapping import field_names, import_item, trigger_item
from pointbridge_smartemailing.webhooks import parse_subscription

NAME = "smartemailing"


class SmartEmailingSettings(Schema):
    username = fields.Email(
        required=True,
        metadata={
            "description": "Login e-mail of the SmartEmailing account: the one shown above "
            "'Create API key' in SmartEmailing's API settings."
        },
    )
    api_key = fields.String(
        required=True,
        validate=validate.Length(min=1),
        metadata={"secret": True, "description": "API key from SmartEmailing's API settings."},
    )
    api_url = fields.Url(
        load_default=DEFAULT_API_URL,
        require_tld=False,
        schemes={"http", "https"},
        metadata={"description": "SmartEmailing API address; change only for testing."},
    )
    contact_list_id = fields.Integer(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=1),
        metadata={
            "description": "Optional: ID of a SmartEmailing contact list every synced customer "
            "is added to (as confirmed). Contacts who unsubscribed stay unsubscribed."
        },
    )

    @pre_load
    def _empty_is_none(self, data: Any, **kwargs: Any) -> Any:
        # Forms and `--set contact_list_id=` send an empty string for "no list".
        if isinstance(data, Mapping) and data.get("contact_list_id") == "":
            data = {**data, "contact_list_id": None}
        return data


def written_lists(integration: Integration) -> set[str]:
    """The contact list every synced customer is added to: a "change in list" automation on it
    fires for pointbridge's own imports as well, so it must not carry a reward."""
    list_id = contact_list_id(integration)
    return set() if list_id is None else {str(list_id)}


@hookimpl
def register_platforms(register: Callable[[Platform], None]) -> None:
    register(
        Platform(
            name=NAME,
            title="SmartEmailing",
            settings_schema=SmartEmailingSettings,
            capabilities=frozenset({Capability.EVENTS, Capability.WEBHOOKS}),
            max_batch=MAX_IMPORT,
            max_event_batch=MAX_EVENTS,
            rate_limit=RATE_LIMIT,
            written_lists=written_lists,
            description="SmartEmailing: loyalty custom fields, custom events for automations, "
            "list subscription webhooks.",
        )
    )


# Field ids by (API url, login, prefix), learnt in this process: saves a lookup per batch when
# the host's stored install data is missing or stale (fields recreated by hand, prefix changed).
_ids_cache: dict[tuple[str, str, str], dict[str, int]] = {}
_ids_lock = threading.Lock()


def _cache_key(integration: Integration) -> tuple[str, str, str]:
    settings = integration.settings
    return (
        str(settings.get("api_url") or DEFAULT_API_URL),
        str(settings.get("username") or ""),
        integration.field_prefix,
    )


def _ensure_fields(
    client: SmartEmailingClient, prefix: str
) -> tuple[dict[str, int], list[str], list[str], list[str]]:
    """Field ids by name, creating what is missing: (ids, created, existing, notes)."""
    wanted = field_names(prefix)
    found: dict[str, dict[str, Any]] = {}
    # Sorted by id so that, should the account hold two fields of one name, the oldest wins
    # every time and data never splits between them.
    for item in sorted(client.customfields(), key=lambda f: int(f.get("id", 0))):
        name = item.get("name")
        if name in wanted and name not in found:
            found[name] = item
    ids: dict[str, int] = {}
    created: list[str] = []
    existing: list[str] = []
    notes: list[str] = []
    for name, spec in wanted.items():
        if name in found:
            ids[name] = int(found[name]["id"])
            existing.append(name)
            actual = found[name].get("type")
            if actual and actual != spec.type:
                notes.append(
                    f"{name} exists as a {actual} field (expected {spec.type}); reused as is."
                )
        else:
            ids[name] = int(client.create_customfield(name, spec.type)["id"])
            created.append(name)
    return ids, created, existing, notes


def _stored_ids(integration: Integration) -> dict[str, int] | None:
    data = integration.data or {}
    ids = data.get("customfields")
    if data.get("field_prefix") != integration.field_prefix or not isinstance(ids, Mapping):
        return None
    if not set(field_names(integration.field_prefix)) <= set(ids):
        return None
    return {name: int(value) for name, value in ids.items()}


def _field_ids(integration: Integration, client: SmartEmailingClient) -> dict[str, int]:
    key = _cache_key(integration)
    with _ids_lock:
        if key in _ids_cache:
            return _ids_cache[key]
    ids = _stored_ids(integration)
    if ids is None:
        ids = _ensure_fields(client, integration.field_prefix)[0]
    with _ids_lock:
        _ids_cache[key] = ids
    return ids


def _refresh_ids(integration: Integration, client: SmartEmailingClient) -> dict[str, int]:
    ids = _ensure_fields(client, integration.field_prefix)[0]
    with _ids_lock:
        _ids_cache[_cache_key(integration)] = ids
    return ids


@hookimpl
def install(integration: Integration) -> InstallResult:
    client = client_for(integration)
    client.check_credentials()
    list_id = contact_list_id(integration)
    if list_id is not None:
        lists = client.contactlists()
        if not any(str(item.get("id")) == str(list_id) for item in lists):
            raise ChoiceRequired(
                "contact_list_id",
                [(str(item["id"]), str(item.get("name") or item["id"])) for item in lists],
                f"SmartEmailing has no contact list with ID {list_id}: pick one of the lists "
                "below, or leave the setting empty to sync fields without adding contacts to a "
                "list.",
            )
    ids, created, existing, notes = _ensure_fields(client, integration.field_prefix)
    with _ids_lock:
        _ids_cache[_cache_key(integration)] = ids
    summary = f"{len(created)} custom fields created, {len(existing)} reused."
    return InstallResult(
        created=created,
        existing=existing,
        data={"customfields": ids, "field_prefix": integration.field_prefix},
        message=" ".join([summary, *notes]),
    )


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def _address_failure(key: int, email: str | None) -> ItemFailure | None:
    email = (email or "").strip()
    if not email:
        return ItemFailure(key, PermanentError("The customer has no e-mail address."))
    if not PLAUSIBLE_EMAIL.match(email):
        return ItemFailure(key, PermanentError(f"{email!r} is not an e-mail address."))
    return None


def _import_chunk(
    integration: Integration,
    client: SmartEmailingClient,
    chunk: Sequence[Contact],
    ids: dict[str, int],
) -> dict[str, Any]:
    list_id = contact_list_id(integration)
    prefix = integration.field_prefix
    try:
        return client.import_contacts([import_item(c, prefix, ids, list_id) for c in chunk])
    except PermanentError:
        # The usual cause of a whole-batch 422 we can fix ourselves: a field deleted (and maybe
        # recreated) in SmartEmailing since install. Look the ids up again and retry once.
        fresh = _refresh_ids(integration, client)
        if fresh == ids:
            raise
        return client.import_contacts([import_item(c, prefix, fresh, list_id) for c in chunk])


@hookimpl
def push_contact(integration: Integration, contacts: Sequence[Contact]) -> list[ItemFailure]:
    client = client_for(integration)
    failures: list[ItemFailure] = []
    sendable: list[Contact] = []
    for contact in contacts:
        problem = _address_failure(contact.customer_id, contact.email)
        if problem:
            failures.append(problem)
        else:
            sendable.append(contact)
    if not sendable:
        return failures
    ids = _field_ids(integration, client)
    for chunk in _chunks(sendable, MAX_IMPORT):
        body = _import_chunk(integration, client, chunk, ids)
        contacts_map = body.get("contacts_map")
        # skip_invalid_emails drops addresses SmartEmailing refuses without failing the call;
        # the contacts_map lists those it took, so whoever is missing was skipped.
        if isinstance(contacts_map, list):
            imported = {
                str(entry.get("emailaddress", "")).strip().lower()
                for entry in contacts_map
                if isinstance(entry, dict)
            }
            failures.extend(
                ItemFailure(
                    contact.customer_id,
                    PermanentError(
                        f"SmartEmailing skipped {contact.email.strip()!r}: it considers the "
                        "address invalid."
                    ),
                )
                for contact in chunk
                if contact.email.strip().lower() not in imported
            )
    return failures


@hookimpl
def emit_event(integration: Integration, events: Sequence[Event]) -> list[ItemFailure]:
    client = client_for(integration)
    failures: list[ItemFailure] = []
    items: list[dict[str, Any]] = []
    for event in events:
        problem = _address_failure(event.id, event.email)
        if problem:
            failures.append(problem)
        else:
            # trigger-event creates an unknown contact, so no event waits for its contact.
            items.append(trigger_item(event, integration.field_prefix))
    for chunk in _chunks(items, MAX_EVENTS):
        client.trigger_events(chunk)
    return failures


@hookimpl
def handle_webhook(integration: Integration, request: WebhookRequest) -> list[ListSubscription]:
    return parse_subscription(integration, request)
