from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from pointbridge_smartemailing import handle_webhook

from pointbridge import Integration, ListSubscription, WebhookRejected, WebhookRequest

SECRET = "whsec-0123456789abcdef"  # conftest's integration.webhook_secret
# SmartEmailing's published example, as shops paste it: no comma after the e-mail, "listd".
VENDOR_EXAMPLE = (
    b'{"eventName": "unsubscribed", "data": {"email": "{{ df_emailaddress }}" "listd": "7"}}'
)


def _request(body: bytes | dict, secret: str | None = SECRET) -> WebhookRequest:
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["x-secret-key"] = secret
    return WebhookRequest(method="POST", headers=headers, query={}, body=raw)


def _rejected(integration: Integration, request: WebhookRequest) -> WebhookRejected:
    with pytest.raises(WebhookRejected) as caught:
        handle_webhook(integration, request)
    return caught.value


@pytest.mark.parametrize(("event", "subscribed"), [("subscribed", True), ("unsubscribed", False)])
def test_list_changes_become_subscriptions(
    make_integration: Callable[..., Integration], event: str, subscribed: bool
) -> None:
    body = {"eventName": event, "data": {"email": "jan@example.cz", "listId": 3}}
    actions = handle_webhook(make_integration(), _request(body))
    assert actions == [ListSubscription("jan@example.cz", "3", subscribed, body)]


@pytest.mark.parametrize("secret", [None, "", "whsec-wrong"])
def test_bad_or_missing_secret_is_401(
    make_integration: Callable[..., Integration], secret: str | None
) -> None:
    body = {"eventName": "subscribed", "data": {"email": "jan@example.cz", "listId": "1"}}
    rejected = _rejected(make_integration(), _request(body, secret))
    assert rejected.status == 401
    assert "X-Secret-Key" in rejected.message
    assert SECRET not in rejected.message


def test_vendor_example_gets_the_json_error_and_the_body_to_paste(
    make_integration: Callable[..., Integration],
) -> None:
    rejected = _rejected(make_integration(), _request(VENDOR_EXAMPLE))
    assert rejected.status == 400
    assert "not valid JSON: Expecting ',' delimiter at line 1, column 73" in rejected.message
    assert 'just before \'"listd": "7"}}\'' in rejected.message
    assert "'listd'" in rejected.message
    # The hint is the exact body: valid JSON, real merge tag, the event and list the shop meant.
    assert rejected.hint == (
        '{"eventName": "unsubscribed", "data": {"email": "{{ df_emailaddress }}", "listId": "7"}}'
    )
    assert json.loads(rejected.hint)["data"]["listId"] == "7"


def test_fixed_comma_but_listd_names_the_typo(
    make_integration: Callable[..., Integration],
) -> None:
    body = {"eventName": "subscribed", "data": {"email": "jan@example.cz", "listd": "7"}}
    rejected = _rejected(make_integration(), _request(body))
    assert rejected.status == 400
    assert rejected.message == (
        "data.listId is missing (found 'listd' — a known typo in SmartEmailing's example)."
    )
    assert '"listId": "7"' in (rejected.hint or "")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"eventName": "joined", "data": {"email": "a@b.cz", "listId": "1"}},
            'eventName is "joined"',
        ),
        ({"data": {"email": "a@b.cz", "listId": "1"}}, "eventName is missing"),
        ({"eventName": "subscribed"}, "data is missing"),
        ({"eventName": "subscribed", "data": {"listId": "1"}}, "data.email is missing"),
        (
            {"eventName": "subscribed", "data": {"email": "{{ email }}", "listId": "1"}},
            "merge tag SmartEmailing did not fill in",
        ),
        ({"eventName": "subscribed", "data": {"email": "", "listId": "1"}}, "data.email is empty"),
        (
            {"eventName": "subscribed", "data": {"email": "a@b.cz", "list_id": "1"}},
            "found 'list_id'",
        ),
    ],
)
def test_malformed_bodies_say_what_is_wrong(
    make_integration: Callable[..., Integration], body: dict, expected: str
) -> None:
    rejected = _rejected(make_integration(), _request(body))
    assert rejected.status == 400
    assert expected in rejected.message
    assert "{{ df_emailaddress }}" in (rejected.hint or "")


def test_hint_falls_back_to_the_configured_list(
    make_integration: Callable[..., Integration],
) -> None:
    rejected = _rejected(make_integration(contact_list_id=7), _request(b"not json"))
    assert rejected.status == 400
    assert json.loads(rejected.hint or "")["data"]["listId"] == "7"


def test_truncated_body_is_not_blamed_on_the_vendor_example(
    make_integration: Callable[..., Integration],
) -> None:
    body = b'{"eventName": "subscribed", "data": {"email": "{{ df_emailaddress }}", "listId": "1"'
    rejected = _rejected(make_integration(), _request(body))
    assert rejected.status == 400
    assert "the body ends too early" in rejected.message
    assert "published example" not in rejected.message
