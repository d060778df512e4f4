"""``emit_event``: one ``POST tracker/events`` per event, category ``<prefix>``, action ``change``.

Ecomail takes one event per request, so a batch is a loop. What matters is what happens when
the loop is interrupted: events already accepted must not be sent again (Ecomail would run the
automation twice), so an interruption after the first event returns the rest as
``TransientError`` items instead of raising for the whole batch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from core import (
    AuthError,
    Event,
    EventType,
    Integration,
    ItemFailure,
    PermanentError,
    RateLimited,
    TransientError,
)
from core.http import error_summary
from pointbridge_ecomail.client import EcomailClient
from pointbridge_ecomail.fields import event_category

ACTION = "change"
LABELS: Mapping[EventType, str] = {
    EventType.CREDIT_CHANGED: "credit",
    EventType.CREDIT_EXPIRES: "expiry",
    EventType.PIN_CHANGED: "pin",
}
VALUE_MAX_CHARS = 20_000


def _jsonable(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def tracker_event(prefix: str, event: Event) -> dict[str, Any]:
    """The ``event`` object Ecomail's tracker takes."""
    value = {key: _jsonable(item) for key, item in event.data.items()}
    return {
        "email": event.email.strip(),
        "category": event_category(prefix),
        "action": ACTION,
        "label": LABELS[event.type],
        "value": value,
    }


def _is_unknown_subscriber(status: int, text: str) -> bool:
    if status == 404:
        return True
    lowered = text.lower()
    return "subscriber" in lowered and ("not found" in lowered or "exist" in lowered)


def emit(integration: Integration, events: Sequence[Event]) -> list[ItemFailure]:
    # No spacing here: every request of the loop waits for its slot in the integration's shared
    # pacer (see client.api_client), which also counts the contact pushes.
    client = EcomailClient.for_integration(integration)
    failures: list[ItemFailure] = []
    delivered_any = False
    for index, event in enumerate(events):
        if event.type not in LABELS:
            failures.append(
                ItemFailure(event.id, PermanentError(f"Ecomail has no mapping for {event.type}."))
            )
            continue
        payload = tracker_event(integration.field_prefix, event)
        size = len(json.dumps(payload["value"], ensure_ascii=False))
        if size > VALUE_MAX_CHARS:
            failures.append(
                ItemFailure(
                    event.id,
                    PermanentError(
                        f"Event value is {size} characters; Ecomail takes {VALUE_MAX_CHARS}."
                    ),
                )
            )
            continue
        try:
            response = client.track_event(payload)
        except AuthError:
            raise
        except (RateLimited, TransientError) as exc:
            if not delivered_any:
                # Nothing went through: the whole call is throttled/failed, and the host honours
                # Retry-After only on a raised RateLimited.
                raise
            reason = (
                f"Ecomail throttled the batch after {index} event(s); retry after "
                f"{exc.retry_after:g} s"
                if isinstance(exc, RateLimited) and exc.retry_after is not None
                else f"Ecomail stopped answering mid-batch: {exc}"
            )
            failures.extend(ItemFailure(rest.id, TransientError(reason)) for rest in events[index:])
            return failures
        except PermanentError as exc:
            failures.append(ItemFailure(event.id, exc))
            continue
        if response.ok:
            delivered_any = True
            continue
        summary = error_summary(response)
        if _is_unknown_subscriber(response.status_code, response.text):
            # The contact push for this customer has not reached Ecomail yet: retry later.
            failures.append(
                ItemFailure(
                    event.id,
                    TransientError(f"{event.email} is not an Ecomail subscriber yet ({summary})"),
                )
            )
        else:
            failures.append(
                ItemFailure(event.id, PermanentError(f"Ecomail rejected the event: {summary}"))
            )
    return failures
