"""Splio's REST API (``https://api.splio.com``) as pointbridge uses it.

Every call carries ``Authorization: Bearer <JWT>`` from ``POST /authenticate``. The token lives
in the integration's kept client (``integration.client``), never on disk, never logged; it is
renewed before it expires, and a 401 (Splio's body is the bare JSON string
``"Authentication failed."``) re-authenticates once and repeats the call.

Splio allows 20 requests/s on ``data/contacts`` and 10/s on everything else, counted apart, per
client IP. The kit paces every request of the integration under the declared 20/s; the calls
off ``data/contacts`` (authentication, the unique key, install's field calls) also keep to the
10/s of their own.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Collection, Sequence
from typing import Any
from urllib.parse import quote

import requests
from requests.auth import AuthBase

from pointbridge import AuthError, ConfigurationError, Integration, TransientError
from pointbridge.http import ApiClient, error_summary, parse_retry_after
from pointbridge.ratelimit import Pacer, RateLimit
from pointbridge_splio.auth import Token
from pointbridge_splio.known import KnownContacts

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.splio.com/"
AUTH_MESSAGE = "Splio refused the API key: check it (Splio → users → API users)."
BULK_MAX = 1000
FIELDS_PER_PAGE = 100
OTHERS_LIMIT = RateLimit(10, 1.0)


def others_pacer() -> Pacer:
    """The pace of one API user's calls off ``data/contacts`` (tests record it instead)."""
    return Pacer(OTHERS_LIMIT)


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


class SplioUser(AuthBase):
    """What pointbridge keeps about one Splio API user between hook calls: its token (put on
    every request, as a ``requests`` auth), the pace of its calls off ``data/contacts``, and
    the contacts Splio confirmed it has.

    It rides in the integration's kept client, whose cache is keyed on this object's ``repr``
    (the key's digest, never the key): a new key or URL starts afresh, as the universe may be
    another one.
    """

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.token: Token | None = None
        self.lock = threading.Lock()
        self.others = others_pacer()
        self.known = KnownContacts()

    def __repr__(self) -> str:
        return f"SplioUser({hashlib.sha256(self.api_key.encode()).hexdigest()[:16]})"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        token = self.token
        if token is not None and not (request.url or "").endswith("/authenticate"):
            request.headers["Authorization"] = f"Bearer {token.value}"
        return request


class SplioClient:
    """One hook call's view of a Splio API user; safe to share between threads."""

    def __init__(self, integration: Integration) -> None:
        self.api: ApiClient = integration.client(
            str(integration.settings.get("api_url") or DEFAULT_API_URL),
            auth=SplioUser(str(integration.settings.get("api_key") or "")),
            auth_message=AUTH_MESSAGE,
            # Splio says when its window resets in RateLimit-Reset, never in Retry-After.
            retry_after=lambda response: parse_retry_after(response.headers.get("RateLimit-Reset")),
        )
        # The kept client's user, not the one just made: it holds the token and what we know.
        self.user: SplioUser = self.api.session.auth  # type: ignore[assignment]

    # -- authentication --------------------------------------------------------------------

    def authenticate(self) -> str:
        """A new token; a refused key is an ``AuthError`` the admin can act on."""
        response = self._send(
            "POST", "authenticate", passthrough=(400,), json={"api_key": self.user.api_key}
        )
        if response.status_code == 400:
            # Splio answers a wrong or missing key with 400, not 401.
            log.info("Splio refused the API key (%s)", splio_error(response))
            raise AuthError(AUTH_MESSAGE)
        token = _json(response).get("token")
        if not isinstance(token, str) or not token:
            raise TransientError("Splio answered /authenticate without a token.")
        return token

    def token(self) -> str:
        # Under the lock so that threads sharing an expired token authenticate once, not each.
        with self.user.lock:
            if self.user.token is None or not self.user.token.fresh():
                self.user.token = Token.issued(self.authenticate())
            return self.user.token.value

    def forget_token(self, value: str) -> None:
        with self.user.lock:
            if self.user.token is not None and self.user.token.value == value:
                self.user.token = None

    def request(
        self, method: str, path: str, *, passthrough: Collection[int] = (), **kwargs: Any
    ) -> requests.Response:
        token = self.token()
        response = self._send(method, path, passthrough=(*passthrough, 401), **kwargs)
        if response.status_code == 401 and 401 not in passthrough:
            # Expired early or revoked: one new token, one more try; a second 401 is an
            # AuthError (the key itself no longer works).
            self.forget_token(token)
            self.token()
            response = self._send(method, path, passthrough=passthrough, **kwargs)
        return response

    def _send(
        self, method: str, path: str, *, passthrough: Collection[int], **kwargs: Any
    ) -> requests.Response:
        if not path.lstrip("/").startswith("data/contacts"):
            self.user.others.request()
        return self.api.request(method, path, passthrough=passthrough, **kwargs)

    # -- universe and fields -----------------------------------------------------------------

    def unique_key(self) -> str | None:
        """What identifies contacts in this universe: ``email``, ``cellphone`` or ``cN``."""
        response = self.request("GET", "universes/unique-key", passthrough=(404,))
        if response.status_code == 404:
            return None
        value = _json(response).get("unique_key")
        return str(value) if value is not None else None

    def contact_fields(self) -> list[dict[str, Any]]:
        """Every contact field, all pages of ``GET /data/fields/contacts``."""
        elements: list[dict[str, Any]] = []
        page = 1
        while True:
            body = _json(
                self.request(
                    "GET",
                    "data/fields/contacts",
                    params={"page_number": page, "per_page": FIELDS_PER_PAGE},
                )
            )
            batch = [e for e in body.get("elements") or [] if isinstance(e, dict)]
            elements.extend(batch)
            total = body.get("count_element")
            if not batch or (isinstance(total, int) and len(elements) >= total):
                return elements
            page += 1

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
        return _json(response)

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
        items = _json(response).get("items")
        return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []

    def update_contact(self, email: str, body: dict[str, Any]) -> requests.Response:
        """``PATCH /data/contacts/{email}``; 400 and 404 come back for the caller to judge."""
        return self.request("PATCH", contact_path(email), json=body, passthrough=(400, 404, 422))


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise TransientError(
            f"Splio answered {response.request.method} {response.url} with something "
            "that is not JSON."
        ) from exc
    if not isinstance(body, dict):
        raise TransientError(f"Splio answered with unexpected JSON: {json.dumps(body)[:200]}")
    return body
