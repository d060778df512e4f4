"""The settings an admin fills in for a Splio integration."""

from __future__ import annotations

from marshmallow import Schema

from pointbridge import setting_fields
from pointbridge_splio.client import DEFAULT_API_URL


class SplioSettings(Schema):
    api_key = setting_fields.secret(
        "API key of a Splio API user (Splio → users → API users → new user)."
    )
    api_url = setting_fields.api_url(
        DEFAULT_API_URL, "Splio API address; change it only if Splio tells you to."
    )
