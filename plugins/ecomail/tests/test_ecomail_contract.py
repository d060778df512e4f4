"""Ecomail against the cases every plugin must pass (pointbridge.testing.contract)."""

from __future__ import annotations

import json
from typing import Any

from pointbridge_ecomail.fake import SERVER_OPTIONS, FakeEcomail, create_app

from pointbridge import Integration, WebhookRequest
from pointbridge.testing.contract import PluginContract

API_KEY = "eco-contract-key"


class TestEcomailContract(PluginContract):
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
