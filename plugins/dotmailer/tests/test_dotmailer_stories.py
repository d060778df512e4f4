"""Dotdigital through the whole host: the stories every plugin must pass
(pointbridge.testing.stories)."""

from __future__ import annotations

from typing import Any

from pointbridge_dotmailer.fake import DotdigitalState, create_app, throttled

from pointbridge.ratelimit import RateLimit
from pointbridge.testing.stories import PluginStories

BOOK = 7
USERNAME = "apiuser-stories@apiconnector.com"
PASSWORD = "Stories-Horse-9"


class TestDotdigitalStories(PluginStories):
    platform_name = "dotmailer"
    # Dotdigital's 35 calls a minute, ten times faster: the real rate would add minutes.
    rate_limit = RateLimit(35, 6.0)

    def fake(self) -> tuple[Any, DotdigitalState]:
        account = DotdigitalState(USERNAME, PASSWORD, address_books={BOOK: "Customers"})
        return create_app(account), account

    def server_options(self) -> dict[str, Any]:
        return {"throttled": throttled}

    def settings(self, url: str) -> dict[str, Any]:
        return {"api_url": url, "username": USERNAME, "password": PASSWORD, "address_book_id": BOOK}

    def points(self, account: DotdigitalState, email: str) -> int | None:
        contact = account.contacts.get(email)
        return None if contact is None else contact.data_fields["ELLITY_POINTS"]
