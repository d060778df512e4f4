"""What a customer may be: one set of rules for the REST API, the CSV import and anything later.

Each rule lives here once, with its message, so a value the API refuses is refused by the
import in the same words, and the database never sees a value it cannot store.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from pointbridge.loyalty import (
    EMAIL_PATTERN,
    MAX_POINTS,
    PIN_PATTERN,
    REASON_PATTERN,
    LoyaltyError,
    normalize_email,
)

# A lone surrogate (JSON allows "\ud83d") is not Unicode text: neither database can encode it.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


class FullMatch(validate.Regexp):
    """``validate.Regexp`` (which the OpenAPI document shows as the pattern) applied to the
    whole value: ``re.match`` with "$" lets "1234\\n" through."""

    def __call__(self, value: str) -> str:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


PIN_RULE = FullMatch(PIN_PATTERN, error="A PIN is 4 to 12 letters or digits.")
REASON_RULE = FullMatch(
    REASON_PATTERN, error="A reason is a slug: lower-case letters, digits, '-' or '_'."
)


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


class Email(Text):
    """An e-mail address as stored (trimmed, lower-cased), by ``normalize_email``'s rules."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return normalize_email(text)
        except LoyaltyError as exc:
            raise ValidationError(exc.message) from None


def text(max_length: int, **kwargs: Any) -> Text:
    """Non-empty text of at most ``max_length`` characters."""
    return Text(validate=validate.Length(min=1, max=max_length), **kwargs)


def optional_text(max_length: int) -> Text:
    return Text(validate=validate.Length(max=max_length), allow_none=True)


def count() -> fields.Integer:
    return fields.Integer(validate=validate.Range(min=0, max=MAX_POINTS))


def check_future(day: date | None, field_name: str) -> None:
    if day is not None and day <= date.today():
        raise ValidationError("Must be a future date.", field_name)


class CustomerFields(Schema):
    external_id = text(200, allow_none=True)
    first_name = optional_text(200)
    last_name = optional_text(200)
    registered = fields.Boolean()
    marketing_consent = fields.Boolean(
        metadata={
            "description": "The customer agreed to marketing e-mail (default false): platforms "
            "subscribe only those who did, and never change a status the contact set there."
        }
    )
    tier_id = optional_text(100)
    tier_name = optional_text(200)
    missions = count()
    rewards = count()
    referrals = count()


class CustomerCreate(CustomerFields):
    email = Email(required=True)
    pin = Text(validate=PIN_RULE)


class CustomerUpdate(CustomerFields):
    email = Email()


class CustomerImport(CustomerCreate):
    """One row of a customer import: a customer and their opening balance."""

    points = count()
    expires_at = fields.Date()

    @validates_schema
    def _check_expiry(self, data: dict[str, Any], **kwargs: Any) -> None:
        check_future(data.get("expires_at"), "expires_at")

    def load_plain(self, data: dict[str, Any]) -> dict[str, Any] | None:
        """What ``load(data)`` gives, for data that is plainly valid, at a fraction of the cost
        (an import judges a million rows): each value passes a conversion stricter than its
        field's (digits only for a count, printable ASCII for an e-mail) and then the field's
        own validators. None when anything does not: ``load`` then gives the verdict and the
        messages, so the rules and their words stay the schema's alone."""
        converters = _plain_converters(self)
        loaded = {}
        try:
            for name, value in data.items():
                loaded[name] = converters[name](value)
            check_future(loaded.get("expires_at"), "expires_at")  # as _check_expiry does
        except (KeyError, TypeError, ValueError, ValidationError, _NotPlain):
            return None
        return loaded


class _NotPlain(Exception):
    """The value needs the field's own conversion to be judged."""


def _plain_converters(schema: Schema) -> dict[str, Callable[[Any], Any]]:
    cached = getattr(schema, "_plain", None)
    if cached is None:
        cached = {
            name: converter
            for name, field in schema.fields.items()
            if (converter := _plain_converter(field)) is not None
        }
        schema._plain = cached  # type: ignore[attr-defined]
    return cached


def _plain_converter(field: fields.Field) -> Callable[[Any], Any] | None:
    """A fast conversion for the field, or None for a kind of field it does not know (whose
    values then always take ``load``)."""
    convert: Callable[[Any], Any]
    if isinstance(field, Email):
        convert = _plain_email
    elif isinstance(field, Text):
        convert = _plain_text
    elif type(field) is fields.Integer and not field.strict:
        convert = _plain_count
    elif type(field) is fields.Boolean:
        truthy, falsy = field.truthy, field.falsy

        def convert(value: Any) -> bool:
            if value in truthy or value in falsy:
                return value in truthy
            raise _NotPlain

    elif type(field) is fields.Date and field.format in (None, "iso"):
        convert = _plain_date
    else:
        return None
    validators = tuple(field.validators)
    allow_none = field.allow_none

    def converted(value: Any) -> Any:
        if value is None:
            if allow_none:
                return None
            raise _NotPlain
        result = convert(value)
        for validator in validators:
            validator(result)
        return result

    return converted


def _plain_text(value: Any) -> str:
    if not isinstance(value, str) or _UNSTORABLE.search(value):
        raise _NotPlain
    return value


def _plain_email(value: Any) -> str:
    normalized = _plain_text(value).strip().lower()
    # Printable ASCII has no control or format characters: normalize_email's other checks.
    if not (
        normalized.isascii()
        and normalized.isprintable()
        and len(normalized) <= 320
        and EMAIL_PATTERN.fullmatch(normalized)
    ):
        raise _NotPlain
    return normalized


def _plain_count(value: Any) -> int:
    if not (isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 19):
        raise _NotPlain
    return int(value)


_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _plain_date(value: Any) -> date:
    if not (isinstance(value, str) and _ISO_DAY.fullmatch(value)):
        raise _NotPlain
    return date.fromisoformat(value)
