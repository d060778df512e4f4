"""What a plugin remembers about one integration between hook calls, kept by the host.

A plugin's hooks are plain functions, called again for every batch, and some things are worth
keeping from one call to the next: an access token that lives an hour, the regional endpoint
an account was found on, which contacts the platform already has. ``integration.state(Make)``
hands back the integration's one ``Make()`` instance, made on first use and then shared by
every call and thread of the process::

    class Known:  # the plugin's own class: it is also the key of the state
        def __init__(self) -> None:
            self.lock = threading.Lock()
            self.emails: set[str] = set()

    known = integration.state(Known)

The state is dropped, and the next call gets a fresh ``Make()``, when the integration's
settings change: a new API key or URL may be another account, where nothing remembered holds.
It lives in the process only (a restart, or another worker, starts afresh), so keep only what
can be learnt again; install's lasting results belong in ``InstallResult.data``. The object is
shared between threads: guard what it changes with a lock of its own. Tests start each from
nothing: ``pointbridge``'s pytest plugin calls ``forget()`` after every test.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from pointbridge.contract.platform import Integration

T = TypeVar("T")

# (integration id, make) -> (digest of the platform and settings, the state)
_kept: dict[tuple[int, Callable[[], Any]], tuple[str, Any]] = {}
_lock = threading.Lock()


def _settings_digest(integration: Integration) -> str:
    # A digest, never the settings: they hold the integration's secrets.
    material = json.dumps([integration.platform, integration.settings], sort_keys=True, default=str)
    return hashlib.sha256(material.encode()).hexdigest()


def state_for(integration: Integration, make: Callable[[], T]) -> T:
    """``Integration.state``: the integration's kept ``make()``, made anew when its settings
    changed. ``make`` (a class, usually) is the key: two kinds of state need two. It runs
    under the store's lock, so it should only build the object, not call the platform."""
    digest = _settings_digest(integration)
    key = (integration.id, make)
    with _lock:
        kept = _kept.get(key)
        if kept is None or kept[0] != digest:
            kept = _kept[key] = (digest, make())
        return kept[1]  # type: ignore[no-any-return]


def forget(integration_id: int | None = None) -> None:
    """Drop the state of one integration (deleted), or of all of them (between tests)."""
    with _lock:
        for key in [k for k in _kept if integration_id is None or k[0] == integration_id]:
            del _kept[key]
