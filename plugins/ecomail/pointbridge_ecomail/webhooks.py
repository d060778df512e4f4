"""The list webhook Ecomail POSTs when someone joins or leaves a list.

Ecomail signs nothing: the host has already checked the unguessable token in the URL, which is
all the authentication this webhook can have. The host also judges the e-mail address when it
applies the subscription.
"""

from __future__ import annotations

from pointbridge import ListSubscription, WebhookRequest, hookimpl
from pointbridge.kit.webhook_body import JsonBody

EXAMPLE_BODY = (
    '{"payload": {"email": "jan@example.com", "status": "SUBSCRIBED", "listId": 1, '
    '"campaignId": null}}'
)
HINT = f"Ecomail sends a body like {EXAMPLE_BODY} (status SUBSCRIBED or UNSUBSCRIBED)."
STATUSES = {"SUBSCRIBED": True, "UNSUBSCRIBED": False}


@hookimpl
def handle_webhook(request: WebhookRequest) -> list[ListSubscription]:
    body = JsonBody.read(request, HINT)
    return [
        ListSubscription(
            email=body.text("payload.email"),
            subscribed=body.choice("payload.status", STATUSES),
            # Documented as a number; "1" is taken too.
            list_id=body.identifier("payload.listId", digits=True),
            raw=body.data,
        )
    ]
