"""Clients per integration, on the account's regional host.

``GET /v2/account-info`` on the configured host (r1) names the account's ``ApiEndpoint``; every
other call goes there. Install stores it in ``InstallResult.data``; should the data lack it (an
integration installed by an older version), it is looked up once per process and remembered.

Clients are kept per integration, not only per API user: each carries its integration's pacer
(``core.ratelimit.pacer_for``), the one budget the host and the plugin share for it.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from typing import Any

from pointbridge import Integration
from pointbridge.ratelimit import Pacer
from pointbridge_dotmailer.client import DEFAULT_API_URL, DotdigitalClient

_lock = threading.Lock()
_clients: dict[tuple[int, str, str, str], DotdigitalClient] = {}
_endpoints: dict[tuple[str, str, str], str] = {}


def _key(base_url: str, settings: Mapping[str, Any]) -> tuple[str, str, str]:
    # The password takes part only as a digest, so a changed password gets a fresh client
    # without keeping the secret itself as a dictionary key.
    digest = hashlib.sha256(str(settings["password"]).encode()).hexdigest()
    return (base_url.rstrip("/") + "/", str(settings["username"]), digest)


def client_at(
    base_url: str, integration: Integration, pacer: Pacer | None = None
) -> DotdigitalClient:
    """A pooled client for this host, API user and integration, writing through ``pacer``."""
    key = (integration.id, *_key(base_url, integration.settings))
    with _lock:
        client = _clients.get(key)
        # A new pacer (the host's rate limit for the integration changed) needs a new client;
        # the old one is dropped, not closed, as another thread may be finishing a call on it.
        if client is None or client.pacer is not pacer:
            client = DotdigitalClient(
                key[1], key[2], str(integration.settings["password"]), pacer=pacer
            )
            _clients[key] = client
        return client


def discover_endpoint(integration: Integration, pacer: Pacer | None = None) -> str:
    """Ask the configured host which regional host serves this account (always a call)."""
    settings = integration.settings
    api_url = str(settings.get("api_url") or DEFAULT_API_URL)
    endpoint = client_at(api_url, integration, pacer).api_endpoint()
    with _lock:
        _endpoints[_key(api_url, settings)] = endpoint
    return endpoint


def regional_client(integration: Integration, pacer: Pacer | None = None) -> DotdigitalClient:
    """The client for the account's regional host, looking the host up only when unknown."""
    settings = integration.settings
    endpoint = integration.data.get("api_endpoint")
    if not endpoint:
        api_url = str(settings.get("api_url") or DEFAULT_API_URL)
        with _lock:
            endpoint = _endpoints.get(_key(api_url, settings))
        if not endpoint:
            endpoint = discover_endpoint(integration, pacer)
    return client_at(str(endpoint), integration, pacer)


def reset() -> None:
    """Forget every client and endpoint (tests; a host reloading its plugins)."""
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()
        _endpoints.clear()
