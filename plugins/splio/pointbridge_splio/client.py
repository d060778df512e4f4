"""Splio's REST API (``https://api.splio.com``) as pointbridge uses it.

Every call carries ``Authorization: Bearer <JWT>`` from ``POST /authenticate``. The token is
kept per integration (``integration.state``), never on disk, never logged; it is renewed
before it expires, and a 401 (Splio's body is the bare JSON string ``"Authentication
failed."``) re-authenticates once and repeats the call.

Splio allows 20 requests/s on ``data/contacts`` and 10/s on everything else, counted apart, per
client IP: the platform declares both, and the calls off ``data/contacts`` (authentication, the
unique key, install's field calls) go through a client paced under the second.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from typing import Any
from urllib.parse import quote

import requests

from pointbridge import AuthError, ConfigurationError, Integration, TransientError
from pointbridge.kit.http import error_summary, json_object, parse_retry_after
from pointbridge.kit.paging import all_pages
from pointbridge.known_contacts import KnownContacts
from pointbridge_splio.auth import KeptToken

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.splio.com/"
AUTH_MESSAGE = "Splio refused the API key: check it (Splio → users → API users)."
BULK_MAX = 1000
FIELDS_PER_PAGE = 100
# The name of Splio's 10/s budget off data/contacts, among the platform's rate_limits.
OFF_CONTACTS = "off_contacts"


def splio_errors(response: requests.Response) -> list[dict[str, Any]]:
    """The items of an error body ``{"status", "errors": [{"error_key", ...}]}``."""
    try:
        errors = response.json().get("errors")
    except (ValueError, AttributeError):
        return []
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def splio_error(response: requests.Response) -> str:
    """Splio's own words from an error body, for messages and logs."""
    parts = [
        ": ".join(str(part) for part in (e.get("error_key"), e.get("error_description")) if part)
        for e in splio_errors(response)
    ]
    if parts:
        return f"HTTP {response.status_code}: " + "; ".join(parts)
    return error_summary(response)


def contact_path(email: str) -> str:
    # The unique key goes in the path: "+" and "/" in addresses must not reach Splio raw.
    return "data/contacts/" + quote(email, safe="@")


def rate_limit_reset(response: requests.Response) -> float | None:
    # Splio says when its window resets in RateLimit-Reset, never in Retry-After.
    return parse_retry_after(response.headers.get("RateLimit-Reset"))


class SplioClient:
    """One hook call's view of a Splio API user; safe to share between threads."""

    def __init__(self, integration: Integration) -> None:
        url, self.api_key = integration.settings["api_url"], integration.settings["api_key"]
        options: dict[str, Any] = {"auth_message": AUTH_MESSAGE, "retry_after": rate_limit_reset}
        self.contacts_api = integration.client(url, **options)
        self.others_api = integration.client(url, limit=OFF_CONTACTS, **options)
        # Another key or URL may be another universe: the host drops both when they change.
        self.auth = integration.state(KeptToken)
        self.known = integration.state(KnownContacts)

    # -- authentication --------------------------------------------------------------------

    def authenticate(self) -> str:
        """A new token; a refused key is an ``AuthError`` the admin can act on."""
        response = self._send(
            "POST", "authenticate", None, passthrough=(400,), json={"api_key": self.api_key}
        )
        if response.status_code == 400:
            # Splio answers a wrong or missing key with 400, not 401.
            log.info("Splio refused the API key (%s)", splio_error(response))
            raise AuthError(AUTH_MESSAGE)
        token = json_object(response).get("token")
        if not isinstance(token, str) or not token:
            raise TransientError("Splio answered /authenticate without a token.")
        return token

    def bearer(self) -> str:
        return self.auth.current(self.authenticate)

    def request(
        self, method: str, path: str, *, passthrough: Collection[int] = (), **kwargs: Any
    ) -> requests.Response:
        token = self.bearer()
        response = self._send(method, path, token, passthrough=(*passthrough, 401), **kwargs)
        if response.status_code == 401 and 401 not in passthrough:
            # Expired early or revoked: one new token, one more try; a second 401 is an
            # AuthError (the key itself no longer works).
            self.auth.forget(token)
            response = self._send(method, path, self.bearer(), passthrough=passthrough, **kwargs)
        return response

    def _send(self, method: str, path: str, token: str | None, **kwargs: Any) -> requests.Response:
        api = self.contacts_api if path.startswith("data/contacts") else self.others_api
        headers = {"Authorization": f"Bearer {token}"} if token else None
        return api.request(method, path, headers=headers, **kwargs)

    # -- universe and fields -----------------------------------------------------------------

    def unique_key(self) -> str | None:
        """What identifies contacts in this universe: ``email``, ``cellphone`` or ``cN``."""
        response = self.request("GET", "universes/unique-key", passthrough=(404,))
        if response.status_code == 404:
            return None
        value = json_object(response).get("unique_key")
        return str(value) if value is not None else None

    def contact_fields(self) -> list[dict[str, Any]]:
        """Every contact field, all pages of ``GET /data/fields/contacts``."""

        def page(offset: int) -> tuple[list[Any], int | None]:
            params = {"page_number": offset // FIELDS_PER_PAGE + 1, "per_page": FIELDS_PER_PAGE}
            body = json_object(self.request("GET", "data/fields/contacts", params=params))
            total = body.get("count_element")
            return list(body.get("elements") or []), total if isinstance(total, int) else None

        return [e for e in all_pages(page, FIELDS_PER_PAGE) if isinstance(e, dict)]

    def create_field(self, name: str, data_type: str) -> dict[str, Any]:
        response = self.request(
            "POST",
            "data/fields",
            json={"scope": "contacts", "name": name, "type": data_type},
            passthrough=(400, 409, 422),
        )
        if not response.ok:
            raise ConfigurationError(
                f"Splio did not create the custom field {name!r} ({splio_error(response)})."
            )
        return json_object(response)

    # -- contacts ----------------------------------------------------------------------------

    def bulk_create(self, contacts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """``POST /data/contacts/bulk``: the per-contact items of Splio's 207 answer."""
        response = self.request(
            "POST", "data/contacts/bulk", json={"contacts": list(contacts)}, passthrough=(400,)
        )
        if response.status_code == 400:
            # We build every contact the same way: a refused batch is a set-up problem (a field
            # deleted or retyped in Splio), which pauses the integration until an admin acts.
            raise ConfigurationError(
                f"Splio rejected the whole batch of contacts ({splio_error(response)}). "
                "If a custom field was deleted or retyped in Splio, reinstall the integration."
            )
        items = json_object(response).get("items")
        return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []

    def update_contact(self, email: str, body: dict[str, Any]) -> requests.Response:
        """``PATCH /data/contacts/{email}``; 400 and 404 come back for the caller to judge."""
        return self.request("PATCH", contact_path(email), json=body, passthrough=(400, 404, 422))
