"""The ``jsonl`` platform: appends everything it is sent to a JSON Lines file.

It is the dry-run sink (point an integration at it to see exactly what a platform would get)
and the smallest complete example of a plugin: a settings schema, a registration, and the
hooks. A webhook sent to a jsonl integration may carry
``{"email": ..., "list_id": ..., "subscribed": true|false}``, which makes it handy for trying
list rewards without a real platform.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Sequence
from datetime import date, datetime, tzinfo
from functools import partial
from pathlib import Path
from typing import Any

from marshmallow import Schema, fields

from pointbridge import (
    Capability,
    Contact,
    Event,
    InstallResult,
    Integration,
    ItemFailure,
    ListSubscription,
    Platform,
    WebhookRejected,
    WebhookRequest,
    hookimpl,
    loyalty_fields,
    shop_time,
)
from pointbridge.storage.files import open_private

_write_lock = threading.Lock()


class JsonlSettings(Schema):
    path = fields.String(
        load_default="pointbridge-out.jsonl",
        metadata={"description": "File to append to (relative to the working directory)."},
    )


def _csv_row(integration: Integration, contact: Contact) -> dict[str, Any]:
    return {"email": contact.email, **loyalty_fields(contact, integration.timezone)}


@hookimpl
def register_platforms(register: Callable[[Platform], None]) -> None:
    register(
        Platform(
            name="jsonl",
            title="JSON Lines file",
            settings_schema=JsonlSettings,
            capabilities=frozenset(Capability),
            max_batch=1000,
            max_event_batch=1000,
            csv_row=_csv_row,
            description="Appends contacts and events to a local file: a dry-run sink.",
        )
    )


def _default(timezone: tzinfo, value: object) -> str:
    # Moments as the shop's clock shows them, with its offset: the same instant, the shop's day.
    if isinstance(value, datetime):
        return shop_time(value, timezone).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot serialize {type(value).__name__}")


def _append(integration: Integration, kind: str, items: Sequence[Any]) -> list[ItemFailure]:
    path = Path(integration.settings["path"])
    lines = [
        json.dumps(
            {
                "integration": integration.name,
                "kind": kind,
                **dataclasses.asdict(item),
                # What a real platform is sent to recognise a redelivered event.
                **({"uid": item.uid} if isinstance(item, Event) else {}),
            },
            default=partial(_default, integration.timezone),
        )
        for item in items
    ]
    with _write_lock, open_private(path, "a") as out:
        out.write("\n".join(lines) + "\n")
    return []


@hookimpl
def install(integration: Integration) -> InstallResult:
    path = Path(integration.settings["path"])
    path.parent.mkdir(parents=True, exist_ok=True)
    open_private(path, "a").close()
    return InstallResult(message=f"Appending to {path.resolve()}")


@hookimpl
def push_contact(integration: Integration, contacts: Sequence[Contact]) -> list[ItemFailure]:
    return _append(integration, "contact", contacts)


@hookimpl
def emit_event(integration: Integration, events: Sequence[Event]) -> list[ItemFailure]:
    return _append(integration, "event", events)


@hookimpl
def handle_webhook(integration: Integration, request: WebhookRequest) -> list[ListSubscription]:
    body = request.json()
    if not isinstance(body, dict) or not {"email", "list_id", "subscribed"} <= body.keys():
        raise WebhookRejected(
            400,
            "Expected a JSON object with email, list_id and subscribed.",
            hint='{"email": "jan@example.com", "list_id": "1", "subscribed": true}',
        )
    if not isinstance(body["subscribed"], bool):
        # bool("false") is True: a string here would subscribe whoever asked to leave.
        raise WebhookRejected(400, "subscribed must be true or false (a JSON boolean).")
    return [ListSubscription(str(body["email"]), str(body["list_id"]), body["subscribed"], body)]
