"""Encryption of secrets at rest (Fernet), with the key from the environment."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from core.errors import PointbridgeError

log = logging.getLogger(__name__)
KEY_FILE = "secret.key"


class SecretsUnreadable(PointbridgeError):
    pass


def _fernet_key(secret: str) -> bytes:
    """A Fernet key as given, or one derived from any other string."""
    try:
        Fernet(secret.encode())
        return secret.encode()
    except ValueError:
        return base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest())


def load_key(secret_key: str | None, instance_path: Path) -> bytes:
    """``POINTBRIDGE_SECRET_KEY``, or a key generated once into the instance folder."""
    if secret_key:
        return _fernet_key(secret_key)
    key_file = instance_path / KEY_FILE
    if not key_file.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        key_file.write_bytes(Fernet.generate_key())
        key_file.chmod(0o600)
        log.warning(
            "POINTBRIDGE_SECRET_KEY is not set: generated a key in %s. Back it up, or set "
            "POINTBRIDGE_SECRET_KEY, or the stored API keys cannot be decrypted.",
            key_file,
        )
    return key_file.read_bytes().strip()


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def encrypt(self, value: str) -> bytes:
        return self._fernet.encrypt(value.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken:
            raise SecretsUnreadable(
                "Stored secrets cannot be decrypted with this POINTBRIDGE_SECRET_KEY; "
                "set the key they were saved with."
            ) from None

    def encrypt_json(self, value: dict[str, Any]) -> bytes:
        return self.encrypt(json.dumps(value))

    def decrypt_json(self, token: bytes | None) -> dict[str, Any]:
        return json.loads(self.decrypt(token)) if token else {}


def redact(value: str) -> str:
    """Enough of a secret to recognize it, never enough to use it."""
    if len(value) <= 8:
        return "•" * len(value)
    return value[:2] + "•" * 6 + value[-2:]
