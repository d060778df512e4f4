"""Bodies built to make the SmartEmailing webhook parser work hard: each is refused, and in time
linear in its size (each once took minutes, the patterns backtracking quadratically over a long
run of spaces or dots)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pointbridge_smartemailing import handle_webhook
from pointbridge_smartemailing.fake import FakeSmartEmailing
from pointbridge_smartemailing.webhooks import paste_body

from pointbridge import Integration, WebhookRejected, WebhookRequest
from pointbridge.testing import FakeServer
from pointbridge.testing.e2e import Pointbridge

SECRET = "whsec-0123456789abcdef"  # conftest's integration.webhook_secret


def _rejected(integration: Integration, body: str) -> WebhookRejected:
    request = WebhookRequest(
        method="POST", headers={"X-Secret-Key": SECRET}, query={}, body=body.encode()
    )
    with pytest.raises(WebhookRejected) as caught:
        handle_webhook(integration, request)
    return caught.value


def test_a_long_run_of_spaces_after_list_id_is_broken_json(
    make_integration: Callable[..., Integration],
) -> None:
    body = '{"eventName": "subscribed", "data": {"listId":' + " " * 300_000 + "x}}"
    rejected = _rejected(make_integration(), body)
    assert rejected.status == 400 and "not valid JSON" in rejected.message
    assert rejected.hint == paste_body("subscribed", "1")


def test_a_list_id_too_long_to_be_one_is_left_out_of_the_hint(
    make_integration: Callable[..., Integration],
) -> None:
    body = '{"eventName": "unsubscribed", "data": {"listId": "' + "7" * 5000 + '" oops}}'
    rejected = _rejected(make_integration(contact_list_id=4), body)
    assert rejected.status == 400
    assert rejected.hint == paste_body("unsubscribed", "4")


def test_an_address_of_200000_dots_is_not_an_e_mail_address(
    tmp_path: Path, database_url: str, fake: FakeSmartEmailing, server: FakeServer
) -> None:
    # The host's e-mail rule refuses it when it applies the subscription, nothing changed.
    email = "a@" + "b." * 100_000 + "@"
    body = '{"eventName": "subscribed", "data": {"email": "' + email + '", "listId": "1"}}'
    settings = {"api_url": server.url, "username": fake.username, "api_key": fake.api_key}
    with Pointbridge(tmp_path, database_url=database_url) as pb:
        pb.add_integration("se", "smartemailing", settings)
        pb.cli("integrations", "set", "se", "list_rewards=1:50")
        headers = {"X-Secret-Key": pb.webhook_secret("se")}
        answer = pb.webhook("se", data=body.encode(), headers=headers)
        assert answer.status_code == 422
        assert "is not an e-mail address" in answer.json()["message"]
        assert pb.pending() == 0
