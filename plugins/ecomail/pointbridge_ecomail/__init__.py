"""pointbridge plugin for Ecomail (api2.ecomailapp.cz, API v2).

Loyalty fields go into one contact list's custom fields (``subscribe-bulk``, 3,000 a call),
events into Ecomail's tracker (category = the field prefix without its ``_``, action
``change``, label ``credit`` / ``expiry`` / ``pin``), and the list's subscribe/unsubscribe
webhook comes back as ``ListSubscription`` actions. The hooks live with their code:
``install``, ``contacts.push_contact``, ``tracker.emit_event``, ``webhooks.handle_webhook``.
"""

from __future__ import annotations

from collections.abc import Callable

from marshmallow import Schema

from pointbridge import Capability, Platform, RateLimit, hookimpl
from pointbridge.kit import setting_fields
from pointbridge_ecomail.client import BULK_MAX, DEFAULT_API_URL
from pointbridge_ecomail.contacts import push_contact
from pointbridge_ecomail.fields import csv_row
from pointbridge_ecomail.install import install
from pointbridge_ecomail.tracker import emit_event
from pointbridge_ecomail.webhooks import handle_webhook

# One HTTP request per event: a batch this size takes ~0.6 s of Ecomail's 1,000/min budget
# at most, so a throttled call never leaves many events waiting behind it.
MAX_EVENT_BATCH = 10


class EcomailSettings(Schema):
    """The integration's own settings (prefix, expiry notice, webhook secret are the host's)."""

    api_key = setting_fields.secret(
        "Ecomail API key (Ecomail → Account management → For developers)."
    )
    list_id = setting_fields.optional_id(
        "ID of the Ecomail contact list to keep the loyalty fields in. Leave empty and install: "
        "pointbridge lists your lists to pick from. It cannot carry a points reward: "
        "pointbridge subscribes every customer to it."
    )
    api_url = setting_fields.api_url(
        DEFAULT_API_URL, "Ecomail API base URL; change only for testing."
    )


PLATFORM = Platform(
    name="ecomail",
    title="Ecomail",
    settings_schema=EcomailSettings,
    capabilities=frozenset({Capability.EVENTS, Capability.WEBHOOKS, Capability.CSV_EXPORT}),
    max_batch=BULK_MAX,
    # Ecomail documents a rate (1,000 requests a minute), no limit on concurrent requests: a
    # second call in flight lets the next page be built while one waits for its answer.
    max_in_flight=2,
    max_event_batch=MAX_EVENT_BATCH,
    # 1,000 requests a minute per API key (documented; 429 + Retry-After beyond), shared by
    # contact pushes and events through the integration's client.
    rate_limit=RateLimit(1000, 60),
    # The tracker takes one event a request, within the same budget.
    event_rate=1000 / 60,
    csv_row=csv_row,
    # Ecomail calls a list's webhook for subscriptions made through its API too, so every
    # export into the synced list comes back: it cannot carry a reward.
    written_lists=setting_fields.written_list("list_id"),
    target_settings=("api_url", "list_id"),
    description="Ecomail: loyalty custom fields in a contact list, tracker events, list webhooks.",
)


@hookimpl
def register_platforms(register: Callable[[Platform], None]) -> None:
    register(PLATFORM)


__all__ = ["PLATFORM", "emit_event", "handle_webhook", "install", "push_contact"]
