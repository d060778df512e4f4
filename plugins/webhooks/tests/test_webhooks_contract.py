"""Outbound webhooks against the cases and the end-to-end stories every plugin must pass."""

from __future__ import annotations

from typing import Any

from pointbridge_webhooks.receiver import NEXT_SECRET, SECRET, Receiver, create_app

from pointbridge.kit.ratelimit import RateLimit
from pointbridge.testing.contract import PluginContract
from pointbridge.testing.stories import PluginStories


class WebhooksAdapter:
    platform_name = "webhooks"

    def fake(self) -> tuple[Any, Receiver]:
        receiver = Receiver()
        return create_app(receiver), receiver

    def settings(self, url: str) -> dict[str, Any]:
        return {"url": url + "/hook", "secret": SECRET}

    def refused_credentials(self) -> dict[str, Any]:
        # A secret the receiver was never given: it answers 401 to every signature.
        return {"secret": NEXT_SECRET}


class TestWebhooksContract(WebhooksAdapter, PluginContract):
    def stored(self, account: Receiver, email: str) -> bool:
        return account.got_contact(email)


class TestWebhooksStories(WebhooksAdapter, PluginStories):
    # One signed request a customer: ten pages of 50, not 10,001 customers, at ten times the
    # declared 10 a second (the real rate would add a minute).
    export_size = 501
    rate_limit = RateLimit(100, 1.0)

    def points(self, receiver: Receiver, email: str) -> int | None:
        updates = [m for m in receiver.of_type("contact.updated") if m["data"]["email"] == email]
        return updates[-1]["data"]["points"] if updates else None

    def credit_balances(self, receiver: Receiver, email: str) -> list[int]:
        credits = receiver.of_type("credit-changed")
        return [m["data"]["balance"] for m in credits if m["data"]["email"] == email]
