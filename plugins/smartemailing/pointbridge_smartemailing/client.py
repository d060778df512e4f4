"""SmartEmailing API v3 calls, through the host's ``ApiClient`` (timeouts, error mapping)."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

import requests

from pointbridge import AuthError, Integration, RateLimit, TransientError
from pointbridge.http import ApiClient
from pointbridge.ratelimit import Pacer, pacer_for

DEFAULT_API_URL = "https://app.smartemailing.cz/api/v3/"
MAX_IMPORT = 500  # contacts per POST import (what SmartEmailing's own clients chunk at)
MAX_EVENTS = 500  # events per POST trigger-event
PAGE_SIZE = 100

# SmartEmailing publishes no rate limit. 5 requests a second is a guess on the safe side: at 500
# contacts an import call it still moves 2,500 contacts a second, more than the API's own
# latency allows, so the cap costs nothing when the platform is healthy.
RATE_LIMIT = RateLimit(calls=5, per_seconds=1.0)

AUTH_MESSAGE = (
    "SmartEmailing refused the login e-mail and API key: check the e-mail (the one shown above "
    "'Create API key' in SmartEmailing) and the API key."
)

# Import settings: update the loyalty fields of existing contacts, never resubscribe anybody,
# and let one bad address skip instead of failing the 499 others with a 422.
IMPORT_SETTINGS: Mapping[str, bool] = {
    "update": True,
    "preserve_unsubscribed": True,
    "skip_invalid_emails": True,
}

# Deliberately loose: it only catches what can never be an address (no @, spaces), so that
# SmartEmailing, not this regex, decides about the doubtful ones (it skips them; see contacts_map).
PLAUSIBLE_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _json(response: requests.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        # A 2xx that is not JSON is a proxy or maintenance page: worth another try later.
        raise TransientError(
            f"{what}: SmartEmailing answered with something other than JSON"
        ) from exc
    if not isinstance(body, dict):
        raise TransientError(f"{what}: unexpected SmartEmailing answer")
    return body


class SmartEmailingClient:
    """One SmartEmailing account (login e-mail + API key), HTTP Basic auth.

    ``pacer`` is the integration's shared request budget: every request (an install's dozen
    field look-ups and creations included) waits for its slot, so the plugin never sends faster
    than ``RATE_LIMIT`` together with everything else sent for the integration.
    """

    def __init__(
        self, base_url: str, username: str, api_key: str, pacer: Pacer | None = None
    ) -> None:
        self.api = ApiClient(
            base_url, auth=(username, api_key), auth_message=AUTH_MESSAGE, pacer=pacer
        )

    def check_credentials(self) -> None:
        """``GET check-credentials``; ``AuthError`` with the admin's message if refused."""
        try:
            response = self.api.get("check-credentials")
        except AuthError:
            raise AuthError(AUTH_MESSAGE) from None
        if _json(response, "GET check-credentials").get("status") != "ok":
            raise AuthError(AUTH_MESSAGE)

    def _paged(self, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        offset = 0
        while True:
            response = self.api.get(path, params={"offset": offset, "limit": PAGE_SIZE})
            body = _json(response, f"GET {path}")
            page = body.get("data") or []
            items.extend(page)
            meta = body.get("meta") or {}
            total = meta.get("total_count") if isinstance(meta, dict) else None
            offset += len(page)
            # Stop on a short page too, in case meta is missing: never loop forever.
            if not page or len(page) < PAGE_SIZE or (total is not None and offset >= total):
                return items

    def customfields(self) -> list[dict[str, Any]]:
        return self._paged("customfields")

    def contactlists(self) -> list[dict[str, Any]]:
        return self._paged("contactlists")

    def create_customfield(self, name: str, type_: str) -> dict[str, Any]:
        response = self.api.post("customfields", json={"name": name, "type": type_})
        data = _json(response, "POST customfields").get("data")
        if not isinstance(data, dict) or "id" not in data:
            raise TransientError(
                f"POST customfields: SmartEmailing did not return the id of {name}"
            )
        return data

    def import_contacts(self, items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        response = self.api.post(
            "import", json={"settings": dict(IMPORT_SETTINGS), "data": list(items)}
        )
        return _json(response, "POST import")

    def trigger_events(self, items: Sequence[Mapping[str, Any]]) -> None:
        self.api.post("trigger-event", json=list(items))


@functools.lru_cache(maxsize=32)
def _cached_client(
    integration_id: int, base_url: str, username: str, api_key: str
) -> SmartEmailingClient:
    # One pooled session per integration and account, kept across calls, so each batch reuses
    # the connection. Keyed by integration too: two integrations on one account have two budgets
    # in the host, so they must not share one client whose pacer would flip between them.
    return SmartEmailingClient(base_url, username, api_key)


def client_for(integration: Integration) -> SmartEmailingClient:
    settings = integration.settings
    client = _cached_client(
        integration.id,
        str(settings.get("api_url") or DEFAULT_API_URL),
        str(settings.get("username") or ""),
        str(settings.get("api_key") or ""),
    )
    # Looked up on every call rather than fixed at construction: pacer_for hands out a new
    # pacer when the limit changes, and the host and this client must always share the same one.
    client.api.pacer = pacer_for(integration.id, RATE_LIMIT)
    return client


def contact_list_id(integration: Integration) -> int | None:
    raw = integration.settings.get("contact_list_id")
    if raw in (None, ""):
        return None
    return int(raw)
