"""``emit_event``: one ``POST tracker/events`` per event, category ``<prefix>``, action ``change``.

Ecomail takes one event per request, so a batch goes out through ``send_events``: an accepted
event is never sent again (Ecomail would run the automation twice), a failed one holds back
its customer's later events so they still arrive in order, and two failed requests in a row
mean Ecomail looks down: the rest wait, costing no attempt.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pointbridge import (
    Event,
    EventType,
    Integration,
    ItemFailure,
    PermanentError,
    TransientError,
    hookimpl,
    send_events,
)
from pointbridge.kit.http import error_summary
from pointbridge.kit.outage import FailureStreak
from pointbridge_ecomail import client
from pointbridge_ecomail.fields import event_category

LABELS = {
    EventType.CREDIT_CHANGED: "credit",
    EventType.CREDIT_EXPIRES: "expiry",
    EventType.PIN_CHANGED: "pin",
    EventType.TIER_CHANGED: "tier",
    EventType.POINTS_EXPIRED: "expired",
    EventType.REFERRAL_COMPLETED: "referral",
    EventType.REWARD_AVAILABLE: "reward",
}
VALUE_MAX_CHARS = 20_000
# Failed requests in a row after which Ecomail is taken to be down and the batch stops: one is a
# blip worth stepping over, two would mean waiting out timeouts for every event left.
MAX_CONSECUTIVE_FAILURES = 2


def tracker_event(prefix: str, event: Event) -> dict[str, Any]:
    """The ``event`` object Ecomail's tracker takes."""
    # tracker/events has no id or idempotency key, so the id goes into the free-form value,
    # the same on every redelivery, for an automation or a report to recognise a repeat.
    value = {**event.data, "event_id": event.uid}
    size = len(json.dumps(value, ensure_ascii=False))
    if size > VALUE_MAX_CHARS:
        raise PermanentError(f"Event value is {size} characters; Ecomail takes {VALUE_MAX_CHARS}.")
    return {
        "email": event.email.strip(),
        "category": event_category(prefix),
        "action": "change",
        "label": LABELS[event.type],
        "value": value,
    }


@hookimpl
def emit_event(integration: Integration, events: Sequence[Event]) -> list[ItemFailure]:
    # Every request waits for its slot in the integration's paced client, which the contact
    # pushes share: no spacing of its own here.
    api = client.api(integration)
    streak = FailureStreak(MAX_CONSECUTIVE_FAILURES)

    def send(event: Event) -> None:
        payload = tracker_event(integration.field_prefix, event)
        with streak.watch():
            response = api.post(
                "tracker/events", json={"event": payload}, passthrough=(400, 404, 422)
            )
        if response.ok:
            return
        summary = error_summary(response)
        # Undocumented: a 404, or a 400/422 saying the subscriber is not found or does not exist.
        text = response.text.lower()
        unknown = "subscriber" in text and ("not found" in text or "exist" in text)
        if response.status_code == 404 or unknown:
            # The contact push for this customer has not reached Ecomail yet: retry later.
            raise TransientError(f"{event.email} is not an Ecomail subscriber yet ({summary})")
        raise PermanentError(f"Ecomail rejected the event: {summary}")

    return send_events(events, send, looks_down=streak)
