"""Splio's REST API (``https://api.splio.com``) as pointbridge uses it.

Every call carries ``Authorization: Bearer <JWT>`` from ``POST /authenticate``. The token is
kept in memory per integration and API key (never on disk, never logged), renewed before it
expires, and a 401 (Splio's body is the bare JSON string ``"Authentication failed."``)
re-authenticates once and repeats the call.
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

from pointbridge import AuthError, ConfigurationError, Integration, TransientError
from pointbridge.http import ApiClient, error_summary
from pointbridge.ratelimit import Pacer, pacer_for
from pointbridge_splio.auth import Token
from pointbridge_splio.pacing import RATE_LIMIT, is_contacts_path, others_window

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.splio.com/"
AUTH_MESSAGE = "Splio refused the API key: check it (Splio → users → API users)."
BULK_MAX = 1000
FIELDS_PER_PAGE = 100


def rate_limit_reset(response: requests.Response) -> float | None:
    """Seconds to wait after a 429: Splio sends ``RateLimit-Reset``, never ``Retry-After``."""
    raw = response.headers.get("RateLimit-Reset")
    if not raw:
        return None
    try:
        return max(0.0, float(raw.strip()))
    except ValueError:
        return None


def splio_error(response: requests.Response) -> str:
    """Splio's own words from an error body ``{"status", "errors": [{..., error_description}]}``."""
    try:
        body = response.json()
    except ValueError:
        return error_summary(response)
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        parts = []
        for error in body["errors"]:
            if isinstance(error, dict):
                key = error.get("error_key")
                text = error.get("error_description") or error.get("error") or ""
                parts.append(f"{key}: {text}" if key else str(text))
        if parts:
            return f"HTTP {response.status_code}: " + "; ".join(parts)
    return error_summary(response)


def contact_path(email: str) -> str:
    # The unique key goes in the path: "+" and "/" in addresses must not reach Splio raw.
    return "data/contacts/" + quote(email, safe="@")


class SplioClient:
    """One Splio API user: its token and its HTTP session. Safe to share between threads.

    Requests to ``data/contacts`` wait for their slot in ``pacer``, the integration's shared
    budget; the others, which Splio counts apart, pass their own window (see
    ``pointbridge_splio.pacing``).
    """

    def __init__(self, api_url: str, api_key: str, pacer: Pacer | None = None) -> None:
        self.api_url = api_url
        self.api = ApiClient(api_url, auth_message=AUTH_MESSAGE, retry_after=rate_limit_reset)
        self.contacts_api = ApiClient(
            api_url, auth_message=AUTH_MESSAGE, retry_after=rate_limit_reset, pacer=pacer
        )
        self._api_key = api_key
        self._token: Token | None = None
        self._lock = threading.Lock()

    @property
    def pacer(self) -> Pacer | None:
        return self.contacts_api.pacer

    # -- authentication --------------------------------------------------------------------

    def authenticate(self) -> str:
        """A new token; a refused key is an ``AuthError`` the admin can act on."""
        response = self._paced(
            "POST", "authenticate", passthrough=(400,), json={"api_key": self._api_key}
        )
        if response.status_code == 400:
            # Splio answers a wrong or missing key with 400, not 401.
            log.info("Splio refused the API key (%s)", splio_error(response))
            raise AuthError(AUTH_MESSAGE)
        try:
            token = response.json().get("token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise TransientError("Splio answered /authenticate without a token.")
        return token

    def token(self) -> str:
        # Under the lock so that threads sharing an expired token authenticate once, not each.
        with self._lock:
            if self._token is None or not self._token.fresh():
                self._token = Token.issued(self.authenticate())
            return self._token.value

    def forget_token(self, value: str) -> None:
        with self._lock:
            if self._token is not None and self._token.value == value:
                self._token = None

    def request(
        self, method: str, path: str, *, passthrough: Collection[int] = (), **kwargs: Any
    ) -> requests.Response:
        token = self.token()
        response = self._send(method, path, token, (*passthrough, 401), kwargs)
        if response.status_code == 401 and 401 not in passthrough:
            # Expired early or revoked: one new token, one more try; a second 401 is an
            # AuthError (the key itself no longer works).
            self.forget_token(token)
            response = self._send(method, path, self.token(), passthrough, kwargs)
        return response

    def _send(
        self,
        method: str,
        path: str,
        token: str,
        passthrough: Collection[int],
        kwargs: dict[str, Any],
    ) -> requests.Response:
        headers = {**kwargs.get("headers", {}), "Authorization": f"Bearer {token}"}
        return self._paced(method, path, passthrough=passthrough, **{**kwargs, "headers": headers})

    def _paced(
        self, method: str, path: str, *, passthrough: Collection[int], **kwargs: Any
    ) -> requests.Response:
        if is_contacts_path(path):
            return self.contacts_api.request(method, path, passthrough=passthrough, **kwargs)
        others_window(self.api_url).wait()
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
        if len(contacts) > BULK_MAX:
            raise ValueError(f"Splio takes at most {BULK_MAX} contacts per bulk call")
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

    def close(self) -> None:
        self.api.close()
        self.contacts_api.close()


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


# One client per integration and key, for the life of the process: the token is reused across
# calls (Splio asks clients not to authenticate per call) and a changed key gets a new entry.
_clients: dict[tuple[int, str, str], SplioClient] = {}
_clients_lock = threading.Lock()


def client_for(integration: Integration) -> SplioClient:
    api_url = str(integration.settings.get("api_url") or DEFAULT_API_URL)
    api_key = str(integration.settings.get("api_key") or "")
    fingerprint = hashlib.sha256(api_key.encode()).hexdigest()[:16]
    key = (integration.id, api_url.rstrip("/"), fingerprint)
    # The budget the host paces this integration's calls with (the platform declares the same
    # RATE_LIMIT); it is replaced only if that limit changes, and the client with it.
    pacer = pacer_for(integration.id, RATE_LIMIT)
    with _clients_lock:
        client = _clients.get(key)
        if client is None or client.pacer is not pacer:
            # A changed key or URL replaces the entry; the old client is dropped, not closed,
            # since another thread may still be finishing a call with it.
            for old in [k for k in _clients if k[0] == integration.id]:
                del _clients[old]
            client = _clients[key] = SplioClient(api_url, api_key, pacer)
        return client


def reset_clients() -> None:
    """Forget every cached client and token (tests; a host reloading integrations)."""
    with _clients_lock:
        for client in _clients.values():
            client.close()
        _clients.clear()
