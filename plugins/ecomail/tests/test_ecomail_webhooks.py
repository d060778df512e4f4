from __future__ import annotations

import json

import pointbridge_ecomail as plugin
import pytest

from pointbridge import ListSubscription, WebhookRejected, WebhookRequest


def request(body: bytes | str | dict) -> WebhookRequest:
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    raw = raw.encode() if isinstance(raw, str) else raw
    # No signature header: Ecomail sends none, the host already checked the URL token.
    return WebhookRequest("POST", {"Content-Type": "application/json"}, {}, raw)


def payload(**overrides: object) -> dict:
    body = {"email": "jan@example.cz", "status": "SUBSCRIBED", "listId": 1, "campaignId": None}
    body.update(overrides)
    return {"payload": body}


def test_subscribed_becomes_a_list_join():
    actions = plugin.handle_webhook(request(payload()))
    assert actions == [
        ListSubscription("jan@example.cz", "1", True, raw=payload()),
    ]


def test_unsubscribed_becomes_a_list_leave_for_that_list():
    [action] = plugin.handle_webhook(request(payload(status="UNSUBSCRIBED", listId=2)))
    assert (action.email, action.list_id, action.subscribed) == ("jan@example.cz", "2", False)


def test_list_id_sent_as_text_is_accepted():
    [action] = plugin.handle_webhook(request(payload(listId="7")))
    assert action.list_id == "7"


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (b"", "empty"),
        (b'{"payload": {"email": "a@b.cz" "status": "SUBSCRIBED"}}', "not valid JSON"),
        (b"[1, 2]", "Expected a JSON object"),
        ({"email": "jan@example.cz", "status": "SUBSCRIBED"}, 'no "payload"'),
        ({"payload": "jan@example.cz"}, '"payload" must be an object'),
        (payload(email=None), "payload.email"),
        (payload(status="BOUNCED"), "SUBSCRIBED or UNSUBSCRIBED, got 'BOUNCED'"),
        (payload(listId=None), "payload.listId"),
        (payload(listId=True), "payload.listId"),
    ],
)
def test_malformed_body_is_a_400_naming_the_problem_and_showing_the_body(body, complaint):
    with pytest.raises(WebhookRejected) as caught:
        plugin.handle_webhook(request(body))
    assert caught.value.status == 400
    assert complaint in caught.value.message
    assert caught.value.hint is not None
    assert '"payload": {"email": "jan@example.com", "status": "SUBSCRIBED"' in caught.value.hint
