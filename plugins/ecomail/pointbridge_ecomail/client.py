"""Ecomail API v2 calls, through the integration's host-owned client (``Integration.client``:
auth header, timeouts, error mapping, pacing under ``PLATFORM.rate_limit``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import requests

from pointbridge import Integration
from pointbridge.http import ApiClient

DEFAULT_API_URL = "https://api2.ecomailapp.cz/"
AUTH_MESSAGE = (
    "Ecomail refused the API key: check it (Ecomail → Account management → For developers)."
)
# Ecomail drops every subscriber past the 3,000th of one subscribe-bulk call without a word.
BULK_MAX = 3000
# A 3,000-contact upsert can take Ecomail a while; the default 30 s read timeout is for small calls.
BULK_TIMEOUT = (5.0, 90.0)
# Lists are paginated on big accounts (``last_page``); a shop has few, this is just a fuse.
MAX_LIST_PAGES = 20


class EcomailClient:
    """The handful of Ecomail endpoints pointbridge uses."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api

    @classmethod
    def for_integration(cls, integration: Integration) -> EcomailClient:
        settings = integration.settings
        api = integration.client(
            str(settings.get("api_url") or DEFAULT_API_URL),
            headers={"key": str(settings.get("api_key") or ""), "Content-Type": "application/json"},
            auth_message=AUTH_MESSAGE,
        )
        return cls(api)

    def lists(self) -> list[dict[str, Any]]:
        """Every list of the account; also the cheapest call that proves the key works."""
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            body = self.api.get("lists", params={"page": page} if page > 1 else None).json()
            # The docs show a bare array; older accounts answer Laravel-paginated objects.
            if isinstance(body, list):
                return body
            found.extend(body.get("data") or [])
            last = int(body.get("last_page") or 1)
            if page >= last or page >= MAX_LIST_PAGES:
                return found
            page += 1

    def list_detail(self, list_id: str) -> dict[str, Any] | None:
        """``GET lists/{id}``'s ``list`` object, or ``None`` when the account has no such list."""
        response = self.api.get(f"lists/{list_id}", passthrough=(404,))
        if response.status_code == 404:
            return None
        body = response.json()
        detail = body.get("list") if isinstance(body, dict) else None
        return detail if isinstance(detail, dict) else None

    def subscribe_bulk(
        self, list_id: str, subscribers: Sequence[Mapping[str, Any]]
    ) -> requests.Response:
        """Upsert up to ``BULK_MAX`` subscribers without resubscribing or confirmation mails.

        400/422 come back to the caller (who isolates the bad item); anything else is raised.
        """
        payload = {
            "subscriber_data": list(subscribers),
            "update_existing": True,
            "resubscribe": False,
            "trigger_autoresponders": False,
            # Bulk always skips double opt-in per the docs; said anyway in case that changes.
            "skip_confirmation": True,
        }
        return self.api.post(
            f"lists/{list_id}/subscribe-bulk",
            json=payload,
            timeout=BULK_TIMEOUT,
            passthrough=(400, 422),
        )

    def track_event(self, event: Mapping[str, Any]) -> requests.Response:
        """``POST tracker/events`` for one event; 400/404/422 come back for per-item handling."""
        return self.api.post(
            "tracker/events", json={"event": dict(event)}, passthrough=(400, 404, 422)
        )
