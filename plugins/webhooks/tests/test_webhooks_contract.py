"""Outbound webhooks against the cases every plugin must pass."""

from __future__ import annotations

from typing import Any

from pointbridge_webhooks.receiver import NEXT_SECRET, SECRET, Receiver, create_app

from pointbridge.testing.contract import PluginContract


class TestWebhooksContract(PluginContract):
    platform_name = "webhooks"

    def fake(self) -> tuple[Any, Receiver]:
        receiver = Receiver()
        return create_app(receiver), receiver

    def settings(self, url: str) -> dict[str, Any]:
        return {"url": url + "/hook", "secret": SECRET}

    def refused_credentials(self) -> dict[str, Any]:
        # A secret the receiver was never given: it answers 401 to every signature.
        return {"secret": NEXT_SECRET}

    def stored(self, account: Receiver, email: str) -> bool:
        return account.got_contact(email)
