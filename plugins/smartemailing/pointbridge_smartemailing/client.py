"""SmartEmailing API v3 calls, through the integration's host-owned client."""

from __future__ import annotations

from typing import Any

from pointbridge import AuthError, Integration, TransientError
from pointbridge.kit.fields import FieldSpec
from pointbridge.kit.http import ApiClient, json_object
from pointbridge.kit.paging import all_pages

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
IMPORT_SETTINGS: dict[str, bool] = {
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


def check_credentials(client: ApiClient) -> None:
    """``GET check-credentials``; ``AuthError`` with the admin's message alone if refused."""
    try:
        response = client.get("check-credentials")
    except AuthError:
        raise AuthError(AUTH_MESSAGE) from None
    if json_object(response).get("status") != "ok":
        raise AuthError(AUTH_MESSAGE)


def paged(client: ApiClient, path: str) -> list[dict[str, Any]]:
    """Every item of a paged list (``customfields``, ``contactlists``)."""

    def page(offset: int) -> tuple[list[dict[str, Any]], int | None]:
        body = json_object(client.get(path, params={"offset": offset, "limit": PAGE_SIZE}))
        meta = body.get("meta")
        return body.get("data") or [], meta.get("total_count") if isinstance(meta, dict) else None

    return all_pages(page, PAGE_SIZE)


def create_customfield(client: ApiClient, spec: FieldSpec) -> int:
    """Create a custom field; its id."""
    body = json_object(client.post("customfields", json={"name": spec.name, "type": spec.type}))
    if not isinstance(body.get("data"), dict) or "id" not in body["data"]:
        raise TransientError(f"SmartEmailing did not return the id of the new field {spec.name}.")
    return int(body["data"]["id"])


def import_contacts(client: ApiClient, items: list[dict[str, Any]]) -> dict[str, Any]:
    return json_object(client.post("import", json={"settings": IMPORT_SETTINGS, "data": items}))
