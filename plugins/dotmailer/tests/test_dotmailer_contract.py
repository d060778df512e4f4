"""Dotdigital against the cases and the end-to-end stories every plugin must pass
(pointbridge.testing.contract, pointbridge.testing.stories)."""

from __future__ import annotations

from typing import Any

from pointbridge_dotmailer.fake import DotdigitalState, create_app, throttled

from pointbridge.kit.ratelimit import RateLimit
from pointbridge.testing.contract import PluginContract
from pointbridge.testing.stories import PluginStories

BOOK = 7
USERNAME = "apiuser-contract@apiconnector.com"
PASSWORD = "Contract-Horse-9"


class DotdigitalAdapter:
    platform_name = "dotmailer"

    def fake(self) -> tuple[Any, DotdigitalState]:
        account = DotdigitalState(USERNAME, PASSWORD, address_books={BOOK: "Customers"})
        return create_app(account), account

    def server_options(self) -> dict[str, Any]:
        return {"throttled": throttled}

    def settings(self, url: str) -> dict[str, Any]:
        return {
            "api_url": url,
            "username": USERNAME,
            "password": PASSWORD,
            "address_book_id": str(BOOK),
        }

    def refused_credentials(self) -> dict[str, Any]:
        return {"password": "not-the-password"}


class TestDotdigitalContract(DotdigitalAdapter, PluginContract):
    def stored(self, account: DotdigitalState, email: str) -> bool:
        contact = account.contacts.get(email.lower())
        return contact is not None and BOOK in contact.lists


class TestDotdigitalStories(DotdigitalAdapter, PluginStories):
    # Dotdigital's 35 calls a minute, ten times faster: the real rate would add minutes.
    rate_limit = RateLimit(35, 6.0)

    def points(self, account: DotdigitalState, email: str) -> int | None:
        contact = account.contacts.get(email)
        return None if contact is None else contact.data_fields["ELLITY_POINTS"]
