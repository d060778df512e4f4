"""Ecomail through the whole host: the stories every plugin must pass
(pointbridge.testing.stories)."""

from __future__ import annotations

import json
from typing import Any

from pointbridge_ecomail.fake import SERVER_OPTIONS, FakeEcomail, create_app

from pointbridge.testing.stories import PluginStories

KEY = "eco-stories-key"


class TestEcomailStories(PluginStories):
    platform_name = "ecomail"

    def fake(self) -> tuple[Any, FakeEcomail]:
        account = FakeEcomail(api_key=KEY)
        account.add_list("Newsletter", 1)
        return create_app(account), account

    def server_options(self) -> dict[str, Any]:
        return SERVER_OPTIONS

    def settings(self, url: str) -> dict[str, str]:
        return {"api_url": url, "api_key": KEY, "list_id": "1"}

    def points(self, account: FakeEcomail, email: str) -> int | None:
        with account.lock:
            contact = account.contacts.get(email)
            return None if contact is None else contact["custom_fields"]["ellity_credit_num"]

    def credit_balances(self, account: FakeEcomail, email: str) -> list[int]:
        events = account.events_for(email)
        return [json.loads(e["value"])["balance"] for e in events if e["label"] == "credit"]
