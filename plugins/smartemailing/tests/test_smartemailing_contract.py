"""SmartEmailing against the cases and the end-to-end stories every plugin must pass
(pointbridge.testing.contract, pointbridge.testing.stories)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from pointbridge_smartemailing.fake import SERVER_OPTIONS, FakeSmartEmailing, create_app
from pointbridge_smartemailing.mapping import wanted_fields
from pointbridge_smartemailing.webhooks import SECRET_HEADER

from pointbridge import Integration, WebhookRequest
from pointbridge.testing.contract import PluginContract
from pointbridge.testing.stories import PluginStories

USERNAME = "contract@example.cz"
API_KEY = "se-contract-key"


class SmartEmailingAdapter:
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


class TestSmartEmailingContract(SmartEmailingAdapter, PluginContract):
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


class TestSmartEmailingStories(SmartEmailingAdapter, PluginStories):
    def fake(self) -> tuple[Any, FakeSmartEmailing]:
        app, account = super().fake()
        # A shop reconnecting: install only reads its fields (creating thirteen at SmartEmailing's
        # 5 requests a second is the activation test's business, and two seconds a story).
        for spec in wanted_fields("ellity_"):
            account.add_customfield(spec.name, spec.type)
        return app, account

    def points(self, account: FakeSmartEmailing, email: str) -> int | None:
        if email not in account.contacts:
            return None
        return int(account.field_values(email)["ellity_credit_num"] or 0)

    def credit_balances(self, account: FakeSmartEmailing, email: str) -> list[int]:
        with account.lock:
            return [
                e["payload"]["balance"]
                for e in account.events
                if e["emailaddress"] == email and e["name"] == "ellity-credit-changed"
            ]
