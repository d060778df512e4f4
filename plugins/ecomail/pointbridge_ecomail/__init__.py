"""pointbridge plugin for Ecomail (api2.ecomailapp.cz, API v2).

Loyalty fields go into one contact list's custom fields (``subscribe-bulk``, 3,000 a call),
events into Ecomail's tracker (category = the field prefix without its ``_``, action
``change``, label ``credit`` / ``expiry`` / ``pin``), and the list's subscribe/unsubscribe
webhook comes back as ``ListSubscription`` actions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pointbridge import (
    Capability,
    Contact,
    Event,
    InstallResult,
    Integration,
    ItemFailure,
    ListSubscription,
    Platform,
    WebhookRequest,
    hookimpl,
)
from pointbridge_ecomail import install as _install
from pointbridge_ecomail import tracker, webhooks
from pointbridge_ecomail.client import BULK_MAX, RATE_LIMIT
from pointbridge_ecomail.contacts import push as push_contacts
from pointbridge_ecomail.fields import csv_values
from pointbridge_ecomail.settings import EcomailSettings, list_id_of

NAME = "ecomail"
# One HTTP request per event: a batch this size takes ~0.6 s of Ecomail's 1,000/min budget
# at most, so a throttled call never leaves many events waiting behind it.
MAX_EVENT_BATCH = 10


def written_lists(integration: Integration) -> set[str]:
    """The list the loyalty fields are synced into: Ecomail calls a list's webhook for
    subscriptions made through its API too, so every export there comes back."""
    list_id = list_id_of(integration)
    return {list_id} if list_id else set()


def csv_row(integration: Integration, contact: Contact) -> dict[str, Any]:
    """One row of the Ecomail import CSV: ``email`` and every prefixed loyalty column."""
    return csv_values(integration.field_prefix, contact)


PLATFORM = Platform(
    name=NAME,
    title="Ecomail",
    settings_schema=EcomailSettings,
    capabilities=frozenset({Capability.EVENTS, Capability.WEBHOOKS, Capability.CSV_EXPORT}),
    max_batch=BULK_MAX,
    max_event_batch=MAX_EVENT_BATCH,
    rate_limit=RATE_LIMIT,
    csv_row=csv_row,
    written_lists=written_lists,
    description="Ecomail: loyalty custom fields in a contact list, tracker events, list webhooks.",
)


@hookimpl
def register_platforms(register: Callable[[Platform], None]) -> None:
    register(PLATFORM)


@hookimpl
def install(integration: Integration) -> InstallResult:
    return _install.install(integration)


@hookimpl
def push_contact(integration: Integration, contacts: Sequence[Contact]) -> list[ItemFailure]:
    return push_contacts(integration, contacts)


@hookimpl
def emit_event(integration: Integration, events: Sequence[Event]) -> list[ItemFailure]:
    return tracker.emit(integration, events)


@hookimpl
def handle_webhook(integration: Integration, request: WebhookRequest) -> list[ListSubscription]:
    return webhooks.parse(request)
