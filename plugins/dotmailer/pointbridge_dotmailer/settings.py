"""The settings an admin fills in for a Dotdigital integration."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from pointbridge.kit import setting_fields
from pointbridge_dotmailer.client import DEFAULT_API_URL
from pointbridge_dotmailer.fields import PRESETS


class DotdigitalSettings(Schema):
    username = fields.String(
        required=True,
        validate=validate.Length(min=1),
        metadata={
            "description": "E-mail of a Dotdigital API user "
            "(Dotdigital → Settings → Access → API users), e.g. apiuser-1a2b@apiconnector.com."
        },
    )
    password = setting_fields.secret("The API user's password.")
    address_book_id = setting_fields.optional_id(
        "The address book (list) contacts are added to. Leave empty and install to pick one; "
        "choose one that holds all of the shop's customers."
    )
    api_url = setting_fields.api_url(
        DEFAULT_API_URL,
        "Where the account's region is looked up. The regional host (r1/r2/r3) is found "
        "automatically; change only for testing.",
    )
    field_preset = fields.String(
        load_default="",
        validate=validate.OneOf(list(PRESETS), error="Must be empty or smile."),
        metadata={
            "description": "Empty: pointbridge's fields, named with the field prefix. smile: "
            "the SMILE_* fields of Smile.io's Dotdigital integration, for its segments."
        },
    )
