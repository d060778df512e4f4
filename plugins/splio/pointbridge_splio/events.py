"""``emit_event``: each event as one Splio interaction, ``POST /events/``, which the shop's
marketing automation and loyalty rules can start on.

An interaction carries a name, a channel, the contact's unique key and a date; Splio documents
no free-form values for it, so the event's data (points, tier, ...) is not sent: an automation
reads the contact's custom fields, which pointbridge writes before that contact's events.
Without ``events_channel`` (the channel the shop set up under Data > Interactions) no event is
sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from typing import Any

from pointbridge import (
    Event,
    Integration,
    ItemFailure,
    PermanentError,
    TransientError,
    hookimpl,
    send_events,
)
from pointbridge.contract.events import event_name
from pointbridge.kit.outage import FailureStreak
from pointbridge_splio.client import SplioClient, splio_error

# The source Splio is told the interaction came from: ``ext_id`` (the event's uid) is unique
# within it, so a repeat can be recognised.
EXT_PROVIDER = "pointbridge"
# Failed requests in a row after which Splio is taken to be down and the batch stops.
MAX_CONSECUTIVE_FAILURES = 2


def interaction(integration: Integration, event: Event) -> dict[str, Any]:
    """The body of ``POST /events/`` for one event."""
    return {
        "event": event_name(integration.field_prefix, event.type),
        "channel": integration.settings["events_channel"],
        "individual_id": event.email.strip(),
        "value_date": event.occurred_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "ext_id": event.uid,
        "ext_provider": EXT_PROVIDER,
    }


@hookimpl
def emit_event(integration: Integration, events: Sequence[Event]) -> list[ItemFailure]:
    if not integration.settings.get("events_channel"):
        # Queued before the channel was unset (the host queues none without it): nowhere to go.
        return []
    client = SplioClient(integration)
    streak = FailureStreak(MAX_CONSECUTIVE_FAILURES)

    def send(event: Event) -> None:
        with streak.watch():
            response = client.request(
                "POST", "events/", json=interaction(integration, event), passthrough=(400, 404)
            )
        if response.status_code == 404:
            # Undocumented: the contact push for this customer has not reached Splio yet.
            raise TransientError(f"{event.email} is not a Splio contact yet")
        if not response.ok:
            raise PermanentError(f"Splio rejected the interaction: {splio_error(response)}")

    return send_events(events, send, looks_down=streak)
