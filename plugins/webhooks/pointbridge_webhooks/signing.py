"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

A message carries ``webhook-id`` (stable across retries: receivers deduplicate on it),
``webhook-timestamp`` (Unix seconds of this attempt) and ``webhook-signature``: space-separated
``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, one per secret in use, so a receiver that
still knows only the old secret keeps verifying while a rotation's overlap lasts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24


class InvalidSecret(ValueError):
    pass


def secret_bytes(secret: str) -> bytes:
    """The key of a ``whsec_<base64>`` secret, as the spec's libraries read it."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecret("A webhook secret is 'whsec_' followed by base64.") from None
    if len(key) < MIN_SECRET_BYTES:
        raise InvalidSecret(f"A webhook secret holds at least {MIN_SECRET_BYTES} random bytes.")
    return key


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secrets: Sequence[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(secret, message_id, timestamp, body) for secret in secrets
        ),
        "Content-Type": "application/json",
    }
