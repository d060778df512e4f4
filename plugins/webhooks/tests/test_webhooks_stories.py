"""Outbound webhooks through the whole host: the stories every plugin must pass
(pointbridge.testing.stories)."""

from __future__ import annotations

from typing import Any

from pointbridge_webhooks.receiver import SECRET, Receiver, create_app

from pointbridge.ratelimit import RateLimit
from pointbridge.testing.stories import PluginStories


class TestWebhooksStories(PluginStories):
    platform_name = "webhooks"
    # One signed request a customer: ten pages of 50, not 10,001 customers, at ten times the
    # declared 10 a second (the real rate would add a minute).
    export_size = 501
    rate_limit = RateLimit(100, 1.0)

    def fake(self) -> tuple[Any, Receiver]:
        receiver = Receiver()
        return create_app(receiver), receiver

    def settings(self, url: str) -> dict[str, str]:
        return {"url": url + "/hook", "secret": SECRET}

    def points(self, receiver: Receiver, email: str) -> int | None:
        updates = [m for m in receiver.of_type("contact.updated") if m["data"]["email"] == email]
        return updates[-1]["data"]["points"] if updates else None

    def credit_balances(self, receiver: Receiver, email: str) -> list[int]:
        credits = receiver.of_type("credit-changed")
        return [m["data"]["balance"] for m in credits if m["data"]["email"] == email]
