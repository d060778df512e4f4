"""The list webhook Ecomail POSTs when someone joins or leaves a list.

Ecomail signs nothing: the host has already checked the unguessable token in the URL, which is
all the authentication this webhook can have. The host also judges the e-mail address when it
applies the subscription.
"""

from __future__ import annotations

from typing import Any

from pointbridge import ListSubscription, WebhookRejected, WebhookRequest, hookimpl

EXAMPLE_BODY = (
    '{"payload": {"email": "jan@example.com", "status": "SUBSCRIBED", "listId": 1, '
    '"campaignId": null}}'
)
HINT = f"Ecomail sends a body like {EXAMPLE_BODY} (status SUBSCRIBED or UNSUBSCRIBED)."
STATUSES = {"SUBSCRIBED": True, "UNSUBSCRIBED": False}


def _reject(problem: str) -> WebhookRejected:
    return WebhookRejected(400, problem, hint=HINT)


@hookimpl
def handle_webhook(request: WebhookRequest) -> list[ListSubscription]:
    try:
        body = request.json()
    except WebhookRejected as exc:
        raise _reject(exc.message) from exc
    if not isinstance(body, dict):
        raise _reject(f"Expected a JSON object, got {type(body).__name__}.")
    payload: Any = body.get("payload")
    if payload is None:
        raise _reject(f'The body has no "payload" object (keys found: {sorted(body)}).')
    if not isinstance(payload, dict):
        raise _reject(f'"payload" must be an object, got {type(payload).__name__}.')
    email = payload.get("email")
    if not isinstance(email, str):
        raise _reject(f"payload.email must be an e-mail address, got {email!r}.")
    status = payload.get("status")
    if not isinstance(status, str) or status.strip().upper() not in STATUSES:
        raise _reject(f"payload.status must be SUBSCRIBED or UNSUBSCRIBED, got {status!r}.")
    list_id = payload.get("listId")
    # Documented as a number; accept "1" too, but not booleans (True is an int in Python).
    if isinstance(list_id, bool) or not (
        isinstance(list_id, int) or (isinstance(list_id, str) and list_id.strip().isdigit())
    ):
        raise _reject(f"payload.listId must be the list's number, got {list_id!r}.")
    return [
        ListSubscription(
            email=email.strip(),
            list_id=str(list_id).strip(),
            subscribed=STATUSES[status.strip().upper()],
            raw=body,
        )
    ]
