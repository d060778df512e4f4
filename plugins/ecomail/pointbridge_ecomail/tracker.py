"""``emit_event``: one ``POST tracker/events`` per event, category ``<prefix>``, action ``change``.

Ecomail takes one event per request, so a batch is a loop. What matters is what happens when
the loop is interrupted: events already accepted must not be sent again (Ecomail would run the
automation twice), so an interruption after the first event returns the rest as
``TransientError`` items instead of raising for the whole batch.

The host charges every returned failure one attempt, so a failure must cost only the events it
concerns: one failed request (a 5xx, a dropped connection) fails its own event and the loop goes
on, holding back that customer's later events so they still arrive in order. Only two failures
in a row (Ecomail looks down) or a 429 (its budget is spent) stop the loop and return the rest.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from pointbridge import (
    AuthError,
    Event,
    EventType,
    Integration,
    ItemFailure,
    PermanentError,
    RateLimited,
    TransientError,
)
from pointbridge.http import error_summary
from pointbridge_ecomail.client import EcomailClient
from pointbridge_ecomail.fields import event_category

ACTION = "change"
LABELS: Mapping[EventType, str] = {
    EventType.CREDIT_CHANGED: "credit",
    EventType.CREDIT_EXPIRES: "expiry",
    EventType.PIN_CHANGED: "pin",
}
VALUE_MAX_CHARS = 20_000
# Failed requests in a row after which Ecomail is taken to be down and the batch stops: one is a
# blip worth stepping over, two would mean waiting out timeouts for every event left.
MAX_CONSECUTIVE_FAILURES = 2


def _jsonable(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def tracker_event(prefix: str, event: Event) -> dict[str, Any]:
    """The ``event`` object Ecomail's tracker takes."""
    value = {key: _jsonable(item) for key, item in event.data.items()}
    # tracker/events has no id or idempotency key, so the id goes into the free-form value,
    # the same on every redelivery, for an automation or a report to recognise a repeat.
    value["event_id"] = event.uid
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
    consecutive_failures = 0
    # Customers with an event to retry: their later events wait, or they would overtake it.
    held: set[int] = set()

    def hold(event: Event, error: TransientError) -> None:
        failures.append(ItemFailure(event.id, error))
        held.add(event.customer_id)

    for index, event in enumerate(events):
        if event.customer_id in held:
            hold(event, TransientError("Waits for an earlier event of the same customer."))
            continue
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
        except RateLimited as exc:
            if not delivered_any:
                # Nothing went through: the whole call is throttled, and the host honours
                # Retry-After (pausing the integration) only on a raised RateLimited.
                raise
            wait = f"; retry after {exc.retry_after:g} s" if exc.retry_after is not None else ""
            reason = f"Ecomail throttled the batch after {index} event(s){wait}"
            failures.extend(ItemFailure(rest.id, TransientError(reason)) for rest in events[index:])
            return failures
        except TransientError as exc:
            consecutive_failures += 1
            if consecutive_failures < MAX_CONSECUTIVE_FAILURES:
                hold(event, exc)
                continue
            if not delivered_any:
                raise
            reason = f"Ecomail stopped answering mid-batch: {exc}"
            failures.extend(ItemFailure(rest.id, TransientError(reason)) for rest in events[index:])
            return failures
        except PermanentError as exc:
            consecutive_failures = 0
            failures.append(ItemFailure(event.id, exc))
            continue
        consecutive_failures = 0
        if response.ok:
            delivered_any = True
            continue
        summary = error_summary(response)
        if _is_unknown_subscriber(response.status_code, response.text):
            # The contact push for this customer has not reached Ecomail yet: retry later.
            hold(
                event,
                TransientError(f"{event.email} is not an Ecomail subscriber yet ({summary})"),
            )
        else:
            failures.append(
                ItemFailure(event.id, PermanentError(f"Ecomail rejected the event: {summary}"))
            )
    return failures
