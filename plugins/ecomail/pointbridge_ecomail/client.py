"""Ecomail API v2 calls, through the integration's host-owned client (``Integration.client``:
auth header, timeouts, error mapping, pacing under ``PLATFORM.rate_limit``)."""

from __future__ import annotations

from typing import Any

from pointbridge import Integration
from pointbridge.kit.http import ApiClient, json_object

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


def api(integration: Integration) -> ApiClient:
    settings = integration.settings
    return integration.client(
        settings["api_url"],
        headers={"key": settings["api_key"], "Content-Type": "application/json"},
        auth_message=AUTH_MESSAGE,
    )


def lists(api: ApiClient) -> list[dict[str, Any]]:
    """Every list of the account; also the cheapest call that proves the key works."""
    found: list[dict[str, Any]] = []
    for page in range(1, MAX_LIST_PAGES + 1):
        body = api.get("lists", params={"page": page} if page > 1 else None).json()
        # The docs show a bare array; older accounts answer Laravel-paginated objects.
        if isinstance(body, list):
            return body
        found.extend(body.get("data") or [])
        if page >= int(body.get("last_page") or 1):
            break
    return found


def list_detail(api: ApiClient, list_id: str) -> dict[str, Any] | None:
    """``GET lists/{id}``'s ``list`` object, or ``None`` when the account has no such list."""
    response = api.get(f"lists/{list_id}", passthrough=(404,))
    detail = json_object(response).get("list") if response.ok else None
    return detail if isinstance(detail, dict) else None
