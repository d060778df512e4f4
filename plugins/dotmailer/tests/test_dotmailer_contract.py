"""Dotdigital against the cases every plugin must pass (pointbridge.testing.contract)."""

from __future__ import annotations

from typing import Any

from pointbridge_dotmailer.fake import DotdigitalState, create_app, throttled

from pointbridge.testing.contract import PluginContract

BOOK = 7
USERNAME = "apiuser-contract@apiconnector.com"
PASSWORD = "Contract-Horse-9"


class TestDotdigitalContract(PluginContract):
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

    def stored(self, account: DotdigitalState, email: str) -> bool:
        contact = account.contacts.get(email.lower())
        return contact is not None and BOOK in contact.lists
