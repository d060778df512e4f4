"""Settings every platform plugin has: a secret credential and its API's base URL."""

from __future__ import annotations

from marshmallow import fields, validate


def secret(description: str) -> fields.String:
    """A required credential (API key, password): encrypted at rest, redacted in output."""
    return fields.String(
        required=True,
        validate=validate.Length(min=1),
        metadata={"secret": True, "description": description},
    )


def api_url(default: str, description: str) -> fields.Url:
    """The API base URL, defaulting to the platform's real one. Loopback and internal hosts
    are allowed for tests and proxies."""
    return fields.Url(
        load_default=default,
        require_tld=False,
        schemes={"http", "https"},
        metadata={"description": description},
    )
