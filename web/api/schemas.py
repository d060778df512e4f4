"""Request and response schemas of the REST API (they generate the OpenAPI document)."""

from __future__ import annotations

from datetime import date
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from pointbridge.loyalty.rules import MAX_POINTS
from pointbridge.loyalty.schema import (
    PIN_RULE,
    REASON_RULE,
    JsonIntegers,
    Text,
    WholeNumber,
    text,
)

# The customer schemas are the core's, shared with the CSV import: one rule, one message.
from pointbridge.loyalty.schema import CustomerCreate as CustomerCreate
from pointbridge.loyalty.schema import CustomerUpdate as CustomerUpdate
from pointbridge.storage.sql import MAX_ID


class CustomerOut(Schema):
    id = fields.Integer()
    email = fields.String()
    external_id = fields.String(allow_none=True)
    first_name = fields.String(allow_none=True)
    last_name = fields.String(allow_none=True)
    registered = fields.Boolean()
    marketing_consent = fields.Boolean()
    pin = fields.String(allow_none=True)
    referral_code = fields.String()
    referral_link = fields.String()
    tier_id = fields.String(allow_none=True)
    tier_name = fields.String(allow_none=True)
    tier_expires_at = fields.Date(allow_none=True)
    points_to_next_tier = fields.Integer(allow_none=True)
    missions = fields.Integer()
    rewards = fields.Integer()
    referrals = fields.Integer()
    balance = fields.Integer()
    next_expiration_date = fields.Date(allow_none=True)
    next_expiration_points = fields.Integer()
    lifetime_points = fields.Integer()
    last_change_at = fields.DateTime(allow_none=True)
    last_change_points = fields.Integer(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class PageQuery(Schema):
    # A query string is text: read as the CSV import reads a count (ASCII digits), where
    # int() took Arabic-Indic digits and "1_0".
    after = WholeNumber(
        load_default=0,
        validate=validate.Range(min=0, max=MAX_ID),
        metadata={"description": "Return items with an id above this (keyset pagination)."},
    )
    limit = WholeNumber(load_default=100, validate=validate.Range(min=1, max=1000))


class CustomerQuery(PageQuery):
    email = text(320, metadata={"description": "Find one customer by e-mail."})


class CustomerPage(Schema):
    items = fields.List(fields.Nested(CustomerOut))
    next_after = fields.Integer(
        allow_none=True, metadata={"description": "Pass as `after` for the next page."}
    )


class TransactionIn(JsonIntegers):
    points = fields.Integer(
        required=True,
        validate=validate.Range(min=-MAX_POINTS, max=MAX_POINTS),
        metadata={"description": "Positive to credit, negative to debit."},
    )
    reason = Text(
        required=True,
        validate=REASON_RULE,
        metadata={"description": "registration, order, review, nameday, birthday, ... or a slug."},
    )
    reference = text(
        200,
        metadata={"description": "Your id for this transaction; a retry with it is a no-op."},
    )
    expires_at = fields.Date(metadata={"description": "When credited points expire."})

    @validates_schema
    def _check(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["points"] == 0:
            raise ValidationError("Must not be 0.", "points")
        expires = data.get("expires_at")
        if expires is not None:
            if data["points"] < 0:
                raise ValidationError("Applies to credits only.", "expires_at")
            if expires <= date.today():
                raise ValidationError("Must be a future date.", "expires_at")


class LedgerEntryOut(Schema):
    id = fields.Integer()
    points = fields.Integer()
    reason = fields.String()
    reference = fields.String(allow_none=True)
    expires_on = fields.Date(allow_none=True)
    created_at = fields.DateTime()


class TransactionOut(LedgerEntryOut):
    balance = fields.Integer()
    replayed = fields.Boolean(
        metadata={"description": "True when the reference was seen before: nothing changed."}
    )


class LedgerPage(Schema):
    items = fields.List(fields.Nested(LedgerEntryOut))
    next_after = fields.Integer(allow_none=True)


class PinIn(Schema):
    pin = Text(
        validate=PIN_RULE,
        metadata={"description": "Omit to generate a new 6-digit PIN."},
    )


class PinOut(Schema):
    pin = fields.String()
