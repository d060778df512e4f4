"""SmartEmailing through the whole host: the stories every plugin must pass
(pointbridge.testing.stories)."""

from __future__ import annotations

from typing import Any

from pointbridge_smartemailing.fake import SERVER_OPTIONS, FakeSmartEmailing, create_app
from pointbridge_smartemailing.mapping import wanted_fields

from pointbridge.testing.stories import PluginStories


class TestSmartEmailingStories(PluginStories):
    platform_name = "smartemailing"

    def fake(self) -> tuple[Any, FakeSmartEmailing]:
        account = FakeSmartEmailing()
        # A shop reconnecting: install only reads its fields (creating ten at SmartEmailing's
        # 5 requests a second is the activation test's business, and two seconds a story).
        for spec in wanted_fields("ellity_"):
            account.add_customfield(spec.name, spec.type)
        return create_app(account), account

    def server_options(self) -> dict[str, Any]:
        return SERVER_OPTIONS

    def settings(self, url: str) -> dict[str, str]:
        return {"api_url": url, "username": "shop@example.cz", "api_key": "se-key-1234567890"}

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
