"""The plugin registry: installed platforms, each with its settings as a JSON Schema, so that a
page can build the form that adds an integration."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import OpenAPIConverter
from marshmallow import Schema, fields

from pointbridge.contract.events import EventType
from pointbridge.contract.platform import Platform
from pointbridge.host_options import MAX_NOTICE_DAYS, MAX_REMINDERS, MAX_THRESHOLDS
from pointbridge.loyalty.rules import MAX_POINTS
from pointbridge.plugins import RegisteredPlatform
from pointbridge.web.api.admin import management_blueprint
from pointbridge.web.services import services

blp = management_blueprint("platforms", "Installed platforms and their settings' JSON Schema.")

JSON_SCHEMA = "http://json-schema.org/draft-07/schema#"
# What the host itself takes beside a platform's settings (the body's top level).
HOST_SETTINGS_SCHEMA: dict[str, Any] = {
    "field_prefix": {"type": "string", "maxLength": 32, "default": "ellity_"},
    "expiry_notice_days": {
        "description": 'Days before expiry to notify the platform: 7, several ([14, 3] or "14,3", '
        'each once), or "off". Platforms with events only.',
        "oneOf": [
            {"type": "integer", "minimum": 1, "maximum": MAX_NOTICE_DAYS},
            {
                "type": "array",
                "items": {"type": "integer", "minimum": 1, "maximum": MAX_NOTICE_DAYS},
                "minItems": 1,
                "maxItems": MAX_REMINDERS,
                "uniqueItems": True,
            },
            {"type": "string"},
        ],
    },
    "list_rewards": {
        "description": "List id -> points for subscribing to it.",
        "type": "object",
        "additionalProperties": {"type": "integer", "minimum": 1},
    },
    "disabled_events": {
        "description": 'Events not to send: ["tier-changed"] or "tier-changed,pin-changed"; '
        '[] or "none" sends them all. Platforms with events only.',
        "oneOf": [
            {
                "type": "array",
                "items": {"type": "string", "enum": sorted(map(str, EventType))},
                "uniqueItems": True,
            },
            {"type": "string"},
        ],
    },
    "reward_thresholds": {
        "description": "Balances whose upward crossing sends reward-available: [500, 1000] or "
        '"500,1000", each once; [] for none. Platforms with events only.',
        "oneOf": [
            {
                "type": "array",
                "items": {"type": "integer", "minimum": 1, "maximum": MAX_POINTS},
                "maxItems": MAX_THRESHOLDS,
                "uniqueItems": True,
            },
            {"type": "string"},
        ],
    },
}


class PlatformOut(Schema):
    name = fields.String()
    title = fields.String()
    description = fields.String(allow_none=True)
    plugin = fields.String()
    version = fields.String(allow_none=True)
    capabilities = fields.List(fields.String())
    settings_schema = fields.Dict(metadata={"description": "JSON Schema (draft 7)."})
    host_settings_schema = fields.Dict(
        metadata={"description": "JSON Schema of the settings pointbridge itself takes."}
    )


def _converter() -> OpenAPIConverter:
    # Settings schemas are flat; a nested one is inlined rather than referenced.
    spec = APISpec("settings", "1", "3.0.3")
    return OpenAPIConverter(openapi_version="3.0.3", schema_name_resolver=lambda _: None, spec=spec)


def settings_json_schema(platform: Platform) -> dict[str, Any]:
    """The platform's settings schema in JSON Schema: OpenAPI's ``nullable`` as a ``null``
    type, secret settings ``writeOnly`` (never answered back)."""
    converted = _converter().schema2jsonschema(platform.settings_schema)
    secrets = platform.secret_settings()
    for name, prop in converted.get("properties", {}).items():
        if prop.pop("nullable", False) and "type" in prop:
            prop["type"] = [prop["type"], "null"]
        if name in secrets:
            prop.update(writeOnly=True, format="password")
    return {"$schema": JSON_SCHEMA, "title": platform.title, **converted}


def _described(registered: RegisteredPlatform) -> dict[str, Any]:
    platform = registered.platform
    return {
        "name": platform.name,
        "title": platform.title,
        "description": platform.description,
        "plugin": registered.plugin.name,
        "version": registered.plugin.version,
        "capabilities": sorted(platform.capabilities),
        "settings_schema": settings_json_schema(platform),
        "host_settings_schema": {
            "$schema": JSON_SCHEMA,
            "type": "object",
            "properties": HOST_SETTINGS_SCHEMA,
        },
    }


@blp.route("/platforms", methods=["GET"])
@blp.response(200, PlatformOut(many=True))
def list_platforms() -> list[dict[str, Any]]:
    """Every installed platform."""
    host = services().host
    return [_described(host.platforms[name]) for name in sorted(host.platforms)]


@blp.route("/platforms/<name>", methods=["GET"])
@blp.response(200, PlatformOut)
@blp.alt_response(404, description="No installed plugin provides it.")
def get_platform(name: str) -> dict[str, Any]:
    """One platform and the JSON Schema of its settings."""
    return _described(services().host.registered(name))
