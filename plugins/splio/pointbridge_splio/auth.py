"""Splio's JWT: when it expires, and when to renew it.

``POST /authenticate`` answers ``{"token": "<JWT>"}`` and nothing about its lifetime in the
answer; the endpoint's reference (dev-scp.splio.com/reference/post_authenticate) gives it as
one hour, though an older page said 24 hours. So the expiry is read from the token's own
``exp`` claim when it has one, and that hour is assumed otherwise: renewing early costs one
call, renewing late costs a 401.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections.abc import Callable

ASSUMED_LIFETIME = 3600.0
# Renew this long before expiry (or sooner for short-lived tokens: a tenth of the lifetime), so
# a request started just before expiry does not arrive with a dead token.
RENEW_MARGIN = 300.0


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim (epoch seconds) of a JWT, read without verifying the signature."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


def renewal_time(token: str) -> float:
    """The monotonic-clock time after which ``token`` is renewed before use."""
    exp = jwt_expiry(token)
    lifetime = max(0.0, exp - time.time() if exp is not None else ASSUMED_LIFETIME)
    return time.monotonic() + lifetime - min(RENEW_MARGIN, lifetime / 10)


class KeptToken:
    """The integration's token between hook calls (``integration.state(KeptToken)``)."""

    def __init__(self) -> None:
        self.value: str | None = None
        self.renew_at = 0.0
        self._lock = threading.Lock()

    def current(self, authenticate: Callable[[], str]) -> str:
        # Under the lock so that threads sharing an expired token authenticate once, not each.
        with self._lock:
            if self.value is None or time.monotonic() >= self.renew_at:
                self.value = authenticate()
                self.renew_at = renewal_time(self.value)
            return self.value

    def forget(self, value: str) -> None:
        """Drop ``value`` if it is still the current token (a 401 said it no longer works)."""
        with self._lock:
            if self.value == value:
                self.value = None
