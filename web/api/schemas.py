"""Request and response schemas of the REST API (they generate the OpenAPI document)."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from pointbridge.loyalty import MAX_POINTS

MAX_ID = 2**62


# A lone surrogate (JSON allows "\ud83d") is not Unicode text: neither database can encode it.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


class Text(fields.String):
    """A string both databases can store: no NUL (PostgreSQL refuses it), no lone surrogate."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if found := _UNSTORABLE.search(text):
            kind = "NUL characters" if found.group() == "\x00" else "unpaired surrogates"
            raise ValidationError(
                f"Must not contain {kind} (found U+{ord(found.group()):04X} at {found.start()})."
            )
        return text


def _text(max_length: int, **kwargs: Any) -> Text:
    return Text(validate=validate.Length(min=1, max=max_length), **kwargs)


def _count(**kwargs: Any) -> fields.Integer:
    return fields.Integer(validate=validate.Range(min=0, max=MAX_POINTS), **kwargs)


class CustomerFields(Schema):
    external_id = _text(200, allow_none=True)
    first_name = Text(validate=validate.Length(max=200), allow_none=True)
    last_name = Text(validate=validate.Length(max=200), allow_none=True)
    registered = fields.Boolean()
    tier_id = Text(validate=validate.Length(max=100), allow_none=True)
    tier_name = Text(validate=validate.Length(max=200), allow_none=True)
    missions = _count()
    rewards = _count()
    referrals = _count()


class CustomerCreate(CustomerFields):
    email = _text(320, required=True)
    pin = Text(validate=validate.Regexp(r"^[0-9A-Za-z]{4,12}$"))


class CustomerUpdate(CustomerFields):
    email = _text(320)


class CustomerOut(Schema):
    id = fields.Integer()
    email = fields.String()
    external_id = fields.String(allow_none=True)
    first_name = fields.String(allow_none=True)
    last_name = fields.String(allow_none=True)
    registered = fields.Boolean()
    pin = fields.String(allow_none=True)
    referral_code = fields.String()
    referral_link = fields.String()
    tier_id = fields.String(allow_none=True)
    tier_name = fields.String(allow_none=True)
    missions = fields.Integer()
    rewards = fields.Integer()
    referrals = fields.Integer()
    balance = fields.Integer()
    next_expiration_date = fields.Date(allow_none=True)
    next_expiration_points = fields.Integer()
    last_change_at = fields.DateTime(allow_none=True)
    last_change_points = fields.Integer(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class PageQuery(Schema):
    after = fields.Integer(
        load_default=0,
        validate=validate.Range(min=0, max=MAX_ID),
        metadata={"description": "Return items with an id above this (keyset pagination)."},
    )
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class CustomerQuery(PageQuery):
    email = _text(320, metadata={"description": "Find one customer by e-mail."})


class CustomerPage(Schema):
    items = fields.List(fields.Nested(CustomerOut))
    next_after = fields.Integer(
        allow_none=True, metadata={"description": "Pass as `after` for the next page."}
    )


class TransactionIn(Schema):
    points = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=-MAX_POINTS, max=MAX_POINTS),
        metadata={"description": "Positive to credit, negative to debit."},
    )
    reason = Text(
        required=True,
        validate=validate.Regexp(r"^[a-z0-9][a-z0-9_-]{0,63}$"),
        metadata={"description": "registration, order, review, nameday, birthday, ... or a slug."},
    )
    reference = _text(
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
        validate=validate.Regexp(r"^[0-9A-Za-z]{4,12}$"),
        metadata={"description": "Omit to generate a new 6-digit PIN."},
    )


class PinOut(Schema):
    pin = fields.String()
