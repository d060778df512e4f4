"""``emit_event``: one ``POST tracker/events`` per event, category ``<prefix>``, action ``change``.

Ecomail takes one event per request, so a batch goes out item by item (``send_each``): an
event already accepted is never sent again (Ecomail would run the automation twice), a 429
hands the untried rest back as ``RateLimited`` (no attempt spent), and a failed request (a 5xx,
a dropped connection) fails its own event only, holding back that customer's later events so
they still arrive in order. Two failed requests in a row mean Ecomail looks down: the rest of
the batch is not tried (each would wait out its own timeout) and waits, costing no attempt.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from pointbridge import (
    Event,
    EventType,
    Integration,
    ItemFailure,
    PermanentError,
    TransientError,
    hookimpl,
    send_each,
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


class _Batch:
    """One ``emit_event`` call: the customers whose events wait, and Ecomail's failure streak."""

    def __init__(self, client: EcomailClient, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.held: set[int] = set()
        self.failures_in_a_row = 0

    def looks_down(self) -> bool:
        return self.failures_in_a_row >= MAX_CONSECUTIVE_FAILURES

    def send(self, event: Event) -> None:
        if event.customer_id in self.held:
            raise TransientError("Waits for an earlier event of the same customer.")
        try:
            self._post(event)
        except TransientError:
            self.held.add(event.customer_id)
            raise

    def _post(self, event: Event) -> None:
        if event.type not in LABELS:
            raise PermanentError(f"Ecomail has no mapping for {event.type}.")
        payload = tracker_event(self.prefix, event)
        size = len(json.dumps(payload["value"], ensure_ascii=False))
        if size > VALUE_MAX_CHARS:
            raise PermanentError(
                f"Event value is {size} characters; Ecomail takes {VALUE_MAX_CHARS}."
            )
        try:
            response = self.client.track_event(payload)
        except TransientError:
            self.failures_in_a_row += 1
            raise
        self.failures_in_a_row = 0
        if response.ok:
            return
        summary = error_summary(response)
        if _is_unknown_subscriber(response.status_code, response.text):
            # The contact push for this customer has not reached Ecomail yet: retry later.
            raise TransientError(f"{event.email} is not an Ecomail subscriber yet ({summary})")
        raise PermanentError(f"Ecomail rejected the event: {summary}")


@hookimpl
def emit_event(integration: Integration, events: Sequence[Event]) -> list[ItemFailure]:
    # Every request waits for its slot in the integration's paced client, which the contact
    # pushes share: no spacing of its own here.
    batch = _Batch(EcomailClient.for_integration(integration), integration.field_prefix)
    return send_each(events, batch.send, key=lambda event: event.id, looks_down=batch.looks_down)
