"""SmartEmailing against the cases every plugin must pass (pointbridge.testing.contract)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from pointbridge_smartemailing.fake import SERVER_OPTIONS, FakeSmartEmailing, create_app
from pointbridge_smartemailing.webhooks import SECRET_HEADER

from pointbridge import Integration, WebhookRequest
from pointbridge.testing.contract import PluginContract

USERNAME = "contract@example.cz"
API_KEY = "se-contract-key"


class TestSmartEmailingContract(PluginContract):
    platform_name = "smartemailing"

    def fake(self) -> tuple[Any, FakeSmartEmailing]:
        account = FakeSmartEmailing(username=USERNAME, api_key=API_KEY)
        return create_app(account), account

    def server_options(self) -> dict[str, Any]:
        return SERVER_OPTIONS

    def settings(self, url: str) -> dict[str, Any]:
        return {"api_url": url, "username": USERNAME, "api_key": API_KEY}

    def refused_credentials(self) -> dict[str, Any]:
        return {"api_key": "not-the-key"}

    def stored(self, account: FakeSmartEmailing, email: str) -> bool:
        return email in account.contacts

    def webhook_request(
        self, integration: Integration, email: str, list_id: str, subscribed: bool
    ) -> WebhookRequest:
        # What the shop's "change in list" automation posts, as the README tells it to.
        event = "subscribed" if subscribed else "unsubscribed"
        body = {"eventName": event, "data": {"email": email, "listId": list_id}}
        headers = {"Content-Type": "application/json", SECRET_HEADER: integration.webhook_secret}
        return WebhookRequest("POST", headers, {}, json.dumps(body).encode())

    def with_wrong_secret(self, request: WebhookRequest) -> WebhookRequest:
        return replace(request, headers={**request.headers, SECRET_HEADER: "guessed-secret"})
