"""Splio's JWT: when it expires, and when to renew it.

``POST /authenticate`` answers ``{"token": "<JWT>"}`` and nothing about its lifetime; Splio's
pages disagree on it (24 hours on the reference home page, one hour in the authentication
guide). So the expiry is read from the token's own ``exp`` claim when it has one, and an hour
is assumed otherwise: renewing early costs one call, renewing late costs a 401.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class Token:
    value: str
    # Monotonic-clock deadline after which the token is renewed before use.
    renew_at: float

    @classmethod
    def issued(cls, value: str, now_wall: float | None = None) -> Token:
        now_wall = time.time() if now_wall is None else now_wall
        exp = jwt_expiry(value)
        lifetime = exp - now_wall if exp is not None else ASSUMED_LIFETIME
        lifetime = max(0.0, lifetime)
        margin = min(RENEW_MARGIN, lifetime / 10)
        return cls(value, time.monotonic() + lifetime - margin)

    def fresh(self) -> bool:
        return time.monotonic() < self.renew_at


class KeptToken:
    """The integration's token between hook calls (``integration.state(KeptToken)``)."""

    def __init__(self) -> None:
        self.token: Token | None = None
        self._lock = threading.Lock()

    def current(self, authenticate: Callable[[], str]) -> str:
        # Under the lock so that threads sharing an expired token authenticate once, not each.
        with self._lock:
            if self.token is None or not self.token.fresh():
                self.token = Token.issued(authenticate())
            return self.token.value

    def forget(self, value: str) -> None:
        """Drop ``value`` if it is still the current token (a 401 said it no longer works)."""
        with self._lock:
            if self.token is not None and self.token.value == value:
                self.token = None
