"""Encryption of secrets at rest (Fernet), with the key from the environment."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from pointbridge.contract.errors import PointbridgeError

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
    if not key_file.exists() and _create_key_file(key_file):
        log.warning(
            "POINTBRIDGE_SECRET_KEY is not set: generated a key in %s. Back it up, or set "
            "POINTBRIDGE_SECRET_KEY, or the stored API keys cannot be decrypted.",
            key_file,
        )
    return key_file.read_bytes().strip()


def _create_key_file(key_file: Path) -> bool:
    """Write a new key that only the owner can read, from its first moment on disk (a chmod
    after writing leaves a moment when anyone can); False when another process created the
    file first, whose key is then the one to use."""
    key_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "wb") as out:
        out.write(Fernet.generate_key())
    return True


class SecretBox:
    """Encrypts and decrypts with one key. Given a function instead of the key, it calls it on
    the first encryption or decryption only, so a command that touches no secret (``pointbridge
    plugins``, ``tokens list``) never generates a key file."""

    def __init__(self, key: bytes | Callable[[], bytes]) -> None:
        self._key = key
        self._loaded: Fernet | None = None
        # Two first uses at once must not both generate a key.
        self._loading = threading.Lock()

    def _fernet(self) -> Fernet:
        with self._loading:
            if self._loaded is None:
                self._loaded = Fernet(self._key() if callable(self._key) else self._key)
            return self._loaded

    def encrypt(self, value: str) -> bytes:
        return self._fernet().encrypt(value.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet().decrypt(token).decode()
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
