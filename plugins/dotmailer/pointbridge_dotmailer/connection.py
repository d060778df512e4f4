"""Clients per integration, on the account's regional host.

``GET /v2/account-info`` on the configured host (r1) names the account's ``ApiEndpoint``; every
other call goes there. Install stores it in ``InstallResult.data``; should the data lack it (an
integration installed by an older version), it is looked up once per process and remembered.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from typing import Any

from core import Integration
from pointbridge_dotmailer.client import DEFAULT_API_URL, DotdigitalClient

_lock = threading.Lock()
_clients: dict[tuple[str, str, str], DotdigitalClient] = {}
_endpoints: dict[tuple[str, str, str], str] = {}


def _key(base_url: str, settings: Mapping[str, Any]) -> tuple[str, str, str]:
    # The password takes part only as a digest, so a changed password gets a fresh client
    # without keeping the secret itself as a dictionary key.
    digest = hashlib.sha256(str(settings["password"]).encode()).hexdigest()
    return (base_url.rstrip("/") + "/", str(settings["username"]), digest)


def client_at(base_url: str, settings: Mapping[str, Any]) -> DotdigitalClient:
    """A pooled client for this host and API user."""
    key = _key(base_url, settings)
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = DotdigitalClient(key[0], key[1], str(settings["password"]))
            _clients[key] = client
        return client


def discover_endpoint(settings: Mapping[str, Any]) -> str:
    """Ask the configured host which regional host serves this account (always a call)."""
    api_url = str(settings.get("api_url") or DEFAULT_API_URL)
    endpoint = client_at(api_url, settings).api_endpoint()
    with _lock:
        _endpoints[_key(api_url, settings)] = endpoint
    return endpoint


def regional_client(integration: Integration) -> DotdigitalClient:
    """The client for the account's regional host, looking the host up only when unknown."""
    settings = integration.settings
    endpoint = integration.data.get("api_endpoint")
    if not endpoint:
        api_url = str(settings.get("api_url") or DEFAULT_API_URL)
        with _lock:
            endpoint = _endpoints.get(_key(api_url, settings))
        if not endpoint:
            endpoint = discover_endpoint(settings)
    return client_at(str(endpoint), settings)


def reset() -> None:
    """Forget every client and endpoint (tests; a host reloading its plugins)."""
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()
        _endpoints.clear()
