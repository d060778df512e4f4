"""SmartEmailing API v3 calls, through the integration's host-owned client."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import requests

from pointbridge import AuthError, Integration, TransientError
from pointbridge.fields import FieldSpec
from pointbridge.http import ApiClient

DEFAULT_API_URL = "https://app.smartemailing.cz/api/v3/"
MAX_IMPORT = 500  # contacts per POST import (what SmartEmailing's own clients chunk at)
MAX_EVENTS = 500  # events per POST trigger-event
PAGE_SIZE = 100

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


def api(integration: Integration) -> ApiClient:
    """The integration's client: HTTP Basic with the account's login e-mail and API key."""
    settings = integration.settings
    return integration.client(
        settings["api_url"],
        auth=(settings["username"], settings["api_key"]),
        auth_message=AUTH_MESSAGE,
    )


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


def check_credentials(client: ApiClient) -> None:
    """``GET check-credentials``; ``AuthError`` with the admin's message alone if refused."""
    try:
        response = client.get("check-credentials")
    except AuthError:
        raise AuthError(AUTH_MESSAGE) from None
    if _json(response, "GET check-credentials").get("status") != "ok":
        raise AuthError(AUTH_MESSAGE)


def paged(client: ApiClient, path: str) -> list[dict[str, Any]]:
    """Every item of a paged list (``customfields``, ``contactlists``)."""
    items: list[dict[str, Any]] = []
    while True:
        params = {"offset": len(items), "limit": PAGE_SIZE}
        body = _json(client.get(path, params=params), f"GET {path}")
        page = body.get("data") or []
        items.extend(page)
        meta = body.get("meta") or {}
        total = meta.get("total_count") if isinstance(meta, dict) else None
        # Stop on a short page too, in case meta is missing: never loop forever.
        if len(page) < PAGE_SIZE or (total is not None and len(items) >= total):
            return items


def create_customfield(client: ApiClient, spec: FieldSpec) -> int:
    """Create a custom field; its id."""
    response = client.post("customfields", json={"name": spec.name, "type": spec.type})
    data = _json(response, "POST customfields").get("data")
    if not isinstance(data, dict) or "id" not in data:
        raise TransientError(
            f"POST customfields: SmartEmailing did not return the id of {spec.name}"
        )
    return int(data["id"])


def import_contacts(client: ApiClient, items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    response = client.post("import", json={"settings": dict(IMPORT_SETTINGS), "data": list(items)})
    return _json(response, "POST import")
