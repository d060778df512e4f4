"""Ecomail API v2 calls, through ``core.http.ApiClient`` (auth header, timeouts, error mapping)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import requests

from pointbridge import Integration, RateLimit
from pointbridge.http import ApiClient
from pointbridge.ratelimit import pacer_for

DEFAULT_API_URL = "https://api2.ecomailapp.cz/"
AUTH_MESSAGE = (
    "Ecomail refused the API key: check it (Ecomail → Account management → For developers)."
)
# Ecomail drops every subscriber past the 3,000th of one subscribe-bulk call without a word.
BULK_MAX = 3000
# A 3,000-contact upsert can take Ecomail a while; the default 30 s read timeout is for small calls.
BULK_TIMEOUT = (5.0, 90.0)
# 1,000 requests a minute per API key (documented; 429 + Retry-After beyond). Contact pushes and
# events share it through the host's per-integration pacer.
RATE_LIMIT = RateLimit(1000, 60)
# Lists are paginated on big accounts (``last_page``); a shop has few, this is just a fuse.
MAX_LIST_PAGES = 20

_clients: dict[tuple[int, str, str], ApiClient] = {}
_clients_lock = threading.Lock()


def api_client(integration: Integration) -> ApiClient:
    """One pooled client per integration and credentials, reused across hook calls.

    Every request waits for a slot of the integration's shared budget (``pacer_for``): the host
    takes one per hook call, which the call's first request reuses, so a batch of events (one
    request each) stays under Ecomail's limit together with the contact pushes.
    """
    api_key = str(integration.settings.get("api_key") or "")
    api_url = str(integration.settings.get("api_url") or DEFAULT_API_URL)
    # The cache key holds a digest, never the key itself.
    cache_key = (integration.id, api_url, hashlib.sha256(api_key.encode()).hexdigest())
    with _clients_lock:
        client = _clients.get(cache_key)
        if client is None:
            stale = [k for k in _clients if k[0] == integration.id]
            for k in stale:
                _clients.pop(k).close()
            client = ApiClient(
                api_url,
                headers={"key": api_key, "Content-Type": "application/json"},
                auth_message=AUTH_MESSAGE,
            )
            _clients[cache_key] = client
    # Looked up on every call: pacer_for hands out a new pacer when the limit changes, and the
    # host and this client must always share the same one.
    client.pacer = pacer_for(integration.id, RATE_LIMIT)
    return client


class EcomailClient:
    """The handful of Ecomail endpoints pointbridge uses."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api

    @classmethod
    def for_integration(cls, integration: Integration) -> EcomailClient:
        return cls(api_client(integration))

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
        """Upsert up to 3,000 subscribers without resubscribing or confirmation mails.

        400/422 come back to the caller (who isolates the bad item); anything else is raised.
        """
        if len(subscribers) > BULK_MAX:
            # Ecomail would silently drop the rest: refuse loudly instead of losing contacts.
            raise ValueError(f"subscribe-bulk takes at most {BULK_MAX} subscribers a call")
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
