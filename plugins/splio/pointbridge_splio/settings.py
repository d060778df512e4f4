"""The settings an admin fills in for a Splio integration."""

from __future__ import annotations

from marshmallow import Schema, fields

from pointbridge_splio.client import DEFAULT_API_URL


class SplioSettings(Schema):
    api_key = fields.String(
        required=True,
        metadata={
            "secret": True,
            "description": "API key of a Splio API user (Splio → users → API users → new user).",
        },
    )
    api_url = fields.Url(
        load_default=DEFAULT_API_URL,
        # Loopback and internal hosts are allowed for test and proxy set-ups.
        require_tld=False,
        metadata={"description": "Splio API address; change it only if Splio tells you to."},
    )
