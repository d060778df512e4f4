"""Ecomail against the cases and the end-to-end stories every plugin must pass
(pointbridge.testing.contract, pointbridge.testing.stories)."""

from __future__ import annotations

import json
from typing import Any

from pointbridge_ecomail.fake import SERVER_OPTIONS, FakeEcomail, create_app

from pointbridge import Integration, WebhookRequest
from pointbridge.testing.contract import PluginContract
from pointbridge.testing.stories import PluginStories

API_KEY = "eco-contract-key"


class EcomailAdapter:
    platform_name = "ecomail"

    def fake(self) -> tuple[Any, FakeEcomail]:
        account = FakeEcomail(api_key=API_KEY)
        account.add_list("Newsletter", 1)
        return create_app(account), account

    def server_options(self) -> dict[str, Any]:
        return SERVER_OPTIONS

    def settings(self, url: str) -> dict[str, Any]:
        return {"api_url": url, "api_key": API_KEY, "list_id": "1"}

    def refused_credentials(self) -> dict[str, Any]:
        return {"api_key": "not-the-key"}


class TestEcomailContract(EcomailAdapter, PluginContract):
    def stored(self, account: FakeEcomail, email: str) -> bool:
        return account.status("1", email) is not None

    def webhook_request(
        self, integration: Integration, email: str, list_id: str, subscribed: bool
    ) -> WebhookRequest:
        status = "SUBSCRIBED" if subscribed else "UNSUBSCRIBED"
        body = {"payload": {"email": email, "status": status, "listId": int(list_id)}}
        return WebhookRequest(
            "POST", {"Content-Type": "application/json"}, {}, json.dumps(body).encode()
        )


class TestEcomailStories(EcomailAdapter, PluginStories):
    def points(self, account: FakeEcomail, email: str) -> int | None:
        with account.lock:
            contact = account.contacts.get(email)
            return None if contact is None else contact["custom_fields"]["ellity_credit_num"]

    def credit_balances(self, account: FakeEcomail, email: str) -> list[int]:
        events = account.events_for(email)
        return [json.loads(e["value"])["balance"] for e in events if e["label"] == "credit"]
