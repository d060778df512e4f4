"""The Ecomail integration's own settings (prefix, expiry notice, webhook secret are the host's)."""

from __future__ import annotations

from marshmallow import Schema, fields

from pointbridge import Integration, setting_fields
from pointbridge_ecomail.client import DEFAULT_API_URL


class EcomailSettings(Schema):
    api_key = setting_fields.secret(
        "Ecomail API key (Ecomail → Account management → For developers)."
    )
    list_id = fields.String(
        load_default="",
        metadata={
            "description": "ID of the Ecomail contact list to keep the loyalty fields in. "
            "Leave empty and install: pointbridge lists your lists to pick from. It cannot "
            "carry a points reward: pointbridge subscribes every customer to it."
        },
    )
    api_url = setting_fields.api_url(
        DEFAULT_API_URL, "Ecomail API base URL; change only for testing."
    )


def list_id_of(integration: Integration) -> str:
    # Settings may come from TOML or the CLI as a number; Ecomail ids are compared as text.
    return str(integration.settings.get("list_id") or "").strip()
