"""pointbridge plugin: signed outbound webhooks, so any system can follow the loyalty program.

Every contact update and event goes to one URL as a JSON message signed by the Standard
Webhooks spec (``signing.py``), one request per message, retried by the host's outbox with
backoff until the receiver answers 2xx. An event keeps its ``webhook-id`` across retries (it
comes from its outbox row, ``Event.uid``); a contact update, the customer's whole latest state,
gets a new one each time it is sent.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, tzinfo
from typing import Any
from urllib.parse import urlsplit

from marshmallow import Schema, ValidationError, fields, validates

from pointbridge import (
    Capability,
    Contact,
    Event,
    InstallResult,
    Integration,
    ItemFailure,
    Platform,
    RateLimit,
    hookimpl,
    send_each,
    send_events,
    shop_time,
)
from pointbridge.kit import setting_fields
from pointbridge_webhooks import signing

NAME = "webhooks"
AUTH_MESSAGE = (
    "The receiver refused pointbridge's signed request (401/403): check that it verifies with "
    "this integration's secret."
)
PING = "pointbridge.ping"
CONTACT_UPDATED = "contact.updated"


def _check_secret(value: str | None) -> None:
    if value is None:
        return
    try:
        signing.secret_bytes(value)
    except signing.InvalidSecret as exc:
        raise ValidationError(str(exc)) from None


class WebhooksSettings(Schema):
    url = setting_fields.WebAddress(
        required=True,
        metadata={"description": "The receiver's endpoint; every message is POSTed there."},
    )
    secret = fields.String(
        required=True,
        metadata={
            "secret": True,
            "description": "whsec_ and base64 of 24+ random bytes; the receiver verifies with it.",
        },
    )
    previous_secret = fields.String(
        load_default=None,
        allow_none=True,
        metadata={"secret": True, "description": "During a rotation: the secret being replaced."},
    )
    previous_secret_until = fields.AwareDateTime(
        load_default=None,
        allow_none=True,
        metadata={"description": "Until when messages are signed with the previous secret too."},
    )

    @validates("url")
    def _url(self, value: str, **_: Any) -> None:
        # Settings other than secrets are shown whole (integrations show): no password here.
        if urlsplit(value).password is not None or urlsplit(value).username is not None:
            raise ValidationError(
                "Put no user or password in the URL: the receiver verifies the signature."
            )

    @validates("secret")
    def _secret(self, value: str, **_: Any) -> None:
        _check_secret(value)

    @validates("previous_secret")
    def _previous(self, value: str | None, **_: Any) -> None:
        _check_secret(value)


def signing_secrets(settings: Mapping[str, Any], now: datetime) -> list[str]:
    """The current secret, and the previous one while the rotation's overlap lasts."""
    secrets = [settings["secret"]]
    previous, until = settings.get("previous_secret"), settings.get("previous_secret_until")
    if previous and until and now < until:
        secrets.append(previous)
    return secrets


def _json_default(value: object) -> str:
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialize {type(value).__name__}")


def _encode(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, default=_json_default, separators=(",", ":")).encode()


def contact_message(contact: Contact, timezone: tzinfo) -> tuple[str, bytes]:
    data = {
        **dataclasses.asdict(contact),
        "membership": contact.membership.value,
        # ISO 8601 with the shop's offset: the same instant, dated as the shop's clock shows.
        "last_change_at": contact.last_change_at and shop_time(contact.last_change_at, timezone),
    }
    # A new id for every send. A contact update is the customer's whole latest state, so one
    # received twice is harmless; an id derived from the content would repeat when a
    # customer went A -> B -> A, and a receiver deduplicating on it would stay on B.
    message_id = f"msg_contact_{contact.customer_id}_{uuid.uuid4().hex}"
    return message_id, _encode({"type": CONTACT_UPDATED, "id": message_id, "data": data})


def event_message(event: Event) -> tuple[str, bytes]:
    message_id = f"msg_event_{event.uid}"
    payload = {
        "type": str(event.type),
        "id": message_id,
        "occurred_at": event.occurred_at,
        "data": {"customer_id": event.customer_id, "email": event.email, **event.data},
    }
    return message_id, _encode(payload)


def send(integration: Integration, message: tuple[str, bytes]) -> None:
    message_id, body = message
    url = str(integration.settings["url"])
    secrets = signing_secrets(integration.settings, datetime.now(UTC))
    integration.client(url, auth_message=AUTH_MESSAGE, url_setting="url").post(
        url, data=body, headers=signing.headers(secrets, message_id, int(time.time()), body)
    )


PLATFORM = Platform(
    name=NAME,
    title="Outbound webhooks",
    settings_schema=WebhooksSettings,
    capabilities=frozenset({Capability.EVENTS}),
    max_batch=50,
    max_event_batch=50,
    # A receiver we know nothing about: a pace any small web app takes.
    rate_limit=RateLimit(calls=10, per_seconds=1.0),
    target_settings=("url",),
    description="Signed webhooks (Standard Webhooks) to any URL: contact updates and events.",
)


@hookimpl
def register_platforms(register: Callable[[Platform], None]) -> None:
    register(PLATFORM)


@hookimpl
def install(integration: Integration) -> InstallResult:
    """A signed ping: proves the URL answers and the receiver accepts the signature."""
    ping_id = f"msg_ping_{int(time.time())}"
    send(integration, (ping_id, _encode({"type": PING, "id": ping_id, "data": {}})))
    return InstallResult(message=f"{integration.settings['url']} accepted a signed ping.")


@hookimpl
def push_contact(integration: Integration, contacts: Sequence[Contact]) -> list[ItemFailure]:
    return send_each(
        contacts,
        lambda contact: send(integration, contact_message(contact, integration.timezone)),
        key=lambda contact: contact.customer_id,
    )


@hookimpl
def emit_event(integration: Integration, events: Sequence[Event]) -> list[ItemFailure]:
    return send_events(events, lambda event: send(integration, event_message(event)))
