"""The bearer token every API route asks for."""

from __future__ import annotations

from flask import abort, request

from pointbridge.access.tokens import authenticate
from pointbridge.web.services import services


def require_token() -> None:
    """A 401 unless the request carries a valid API token as ``Authorization: Bearer``."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        abort(401, description="Send 'Authorization: Bearer <token>' (pointbridge tokens create).")
    if not authenticate(services().db, token.strip()):
        abort(401, description="The API token is not valid.")
