"""What a customer may be: one set of rules for the REST API, the CSV import and anything later.

Each rule lives here once, with its message, so a value the API refuses is refused by the
import in the same words, and the database never sees a value it cannot store.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any, ClassVar

from marshmallow import Schema, ValidationError, fields, missing, validate, validates_schema

from pointbridge.loyalty.rules import (
    EMAIL_PATTERN,
    MAX_POINTS,
    PIN_PATTERN,
    REASON_PATTERN,
    WHOLE_NUMBER_TEXT,
    LoyaltyError,
    normalize_email,
)

# A lone surrogate (JSON allows "\ud83d") is not Unicode text: neither database can encode it.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def has_unstorable(value: str) -> bool:
    """Whether ``value`` holds what neither database stores (``Text`` refuses it)."""
    return _UNSTORABLE.search(value) is not None


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


class WholeNumber(fields.Integer):
    """An integer; written as text (a CSV cell), by ``WHOLE_NUMBER_TEXT``, as the settings
    read one: the field's own int() credited 1,000 points for "1_000"."""

    def _validated(self, value: Any) -> int:
        if isinstance(value, str) and WHOLE_NUMBER_TEXT.fullmatch(value.strip()) is None:
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


def count() -> fields.Integer:
    return WholeNumber(validate=validate.Range(min=0, max=MAX_POINTS))


def check_future(day: date | None, field_name: str) -> None:
    if day is not None and day <= date.today():
        raise ValidationError("Must be a future date.", field_name)


class JsonIntegers(Schema):
    """A schema of JSON input: each of its integer fields takes a JSON integer and nothing
    else, the rule of the transactions endpoint's ``points``. A non-strict field truncated
    10.5 to 10 and read "10" and 1e3 (a float) as numbers: the bulk API credited 10 points
    for 10.5. A schema of CSV cells, which are all text, turns it off."""

    json_integers: ClassVar[bool] = True

    def on_bind_field(self, field_name: str, field_obj: fields.Field) -> None:
        if isinstance(field_obj, fields.Integer):
            field_obj.strict = self.json_integers


class CustomerFields(JsonIntegers):
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


class TierProgress(JsonIntegers):
    """What the shop's tier data carries beside the tier itself."""

    tier_expires_at = fields.Date(
        allow_none=True, metadata={"description": "When the customer's tier lapses."}
    )
    points_to_next_tier = WholeNumber(
        allow_none=True,
        validate=validate.Range(min=0, max=MAX_POINTS),
        metadata={"description": "Points the next tier still wants."},
    )


class CustomerCreate(CustomerFields, TierProgress):
    email = Email(required=True)
    pin = Text(validate=PIN_RULE)


class CustomerUpdate(CustomerFields, TierProgress):
    email = Email()


class CustomerImport(CustomerCreate):
    """One row of a customer import: a customer and their opening balance, from a CSV
    file's cells (text: "120" is a count)."""

    json_integers = False

    points = count()
    expires_at = fields.Date()

    @validates_schema
    def _check_expiry(self, data: dict[str, Any], **kwargs: Any) -> None:
        check_future(data.get("expires_at"), "expires_at")

    def load_plain_columns(
        self, columns: Mapping[str, Sequence[Any]], count: int
    ) -> list[dict[str, Any]] | None:
        """What ``load`` gives for each of ``count`` customers, given by column (a value, or
        ``missing`` where a customer has none), when every value is plainly valid, at a small
        fraction of the cost (an import judges a million rows): a column at a time, each value
        passes a conversion stricter than its field's (digits only for a count, printable
        ASCII for an e-mail), by builtins that run in C, and then the field's own validators
        (a length or range rule on the column's extremes only). None when anything does not:
        ``load`` then gives the verdicts and the messages, so the rules and their words stay
        the schema's alone."""
        converters = _plain_converters(self)
        loaded: dict[str, list[Any]] = {}
        try:
            for name, values in columns.items():
                loaded[name] = converters[name](values)
            _check_future_column(loaded.get("expires_at", ()))  # as _check_expiry does
        except (KeyError, TypeError, ValueError, ValidationError, _NotPlain):
            return None
        names = [name for name, values in loaded.items() if values]
        rows = [
            dict(zip(names, row, strict=True))
            for row in zip(*(loaded[n] for n in names), strict=True)
        ]
        if not names:
            rows = [{} for _ in range(count)]
        for name in names:
            if missing in loaded[name]:
                for row in rows:
                    if row[name] is missing:
                        del row[name]
        return rows


class CustomerItem(CustomerImport):
    """One customer of the bulk API: a row of the import as JSON, whose numbers are JSON
    integers, as everywhere else in the API."""

    json_integers = True


class _NotPlain(Exception):
    """The value needs the field's own conversion to be judged."""


def _check_future_column(days: Sequence[Any]) -> None:
    given = [day for day in days if day is not missing and day is not None]
    if given:
        check_future(min(given), "expires_at")


def _plain_converters(schema: Schema) -> dict[str, Callable[[Sequence[Any]], list[Any]]]:
    cached = getattr(schema, "_plain", None)
    if cached is None:
        cached = {
            name: converter
            for name, field in schema.fields.items()
            if (converter := _plain_converter(field)) is not None
        }
        schema._plain = cached  # type: ignore[attr-defined]
    return cached


def _plain_converter(field: fields.Field) -> Callable[[Sequence[Any]], list[Any]] | None:
    """A fast conversion of a column of the field's values (``missing`` and, when the field
    allows it, None kept in place: no validator sees them; an empty list when every value is
    missing), or None for a kind of field it does not know (whose values then always take
    ``load``)."""
    convert: Callable[[list[Any]], list[Any]]
    if isinstance(field, Email):
        convert = _plain_emails
    elif isinstance(field, Text):
        convert = _plain_texts
    elif type(field) is WholeNumber and not field.strict:
        convert = _plain_counts
    elif type(field) is fields.Boolean:
        truthy, falsy = field.truthy, field.falsy

        def convert(values: list[Any]) -> list[Any]:
            if not set(values) <= truthy | falsy:
                raise _NotPlain
            return list(map(truthy.__contains__, values))

    elif type(field) is fields.Date and field.format in (None, "iso"):
        convert = _plain_dates
    else:
        return None
    validators = tuple(field.validators)
    allow_none = field.allow_none

    def converted(values: Sequence[Any]) -> list[Any]:
        given = [v for v in values if v is not missing and v is not None]
        if len(given) < len(values):
            if not allow_none and any(v is None for v in values):
                raise _NotPlain
            if not given:
                return list(values) if any(v is not missing for v in values) else []
            done = iter(converted(given))
            return [v if v is missing or v is None else next(done) for v in values]
        result = convert(given)
        for validator in validators:
            if type(validator) in (validate.Length, validate.Range):
                # Each judges a value by its length (or size) alone: the shortest and the
                # longest (the least and the greatest) pass, so does every value between.
                key = len if type(validator) is validate.Length else None
                validator(min(result, key=key))
                validator(max(result, key=key))
            else:
                for value in result:
                    validator(value)
        return result

    return converted


def _strings(values: list[Any]) -> str:
    """The values joined, when every one is a string."""
    if not set(map(type, values)) <= {str}:
        raise _NotPlain
    return "".join(values)


def _plain_texts(values: list[Any]) -> list[Any]:
    if _UNSTORABLE.search(_strings(values)):
        raise _NotPlain
    return values


def _plain_emails(values: list[Any]) -> list[Any]:
    _strings(values)
    normalized = [value.strip().lower() for value in values]
    joined = "".join(normalized)
    # Printable ASCII has no control or format characters: normalize_email's other checks.
    if not (
        joined.isascii()
        and joined.isprintable()
        and max(map(len, normalized)) <= 320
        and all(map(EMAIL_PATTERN.fullmatch, normalized))
    ):
        raise _NotPlain
    return normalized


def _plain_counts(values: list[Any]) -> list[Any]:
    joined = _strings(values)
    lengths = list(map(len, values))
    if not (joined.isascii() and joined.isdigit() and min(lengths) > 0 and max(lengths) < 19):
        raise _NotPlain
    return list(map(int, values))


_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _plain_dates(values: list[Any]) -> list[Any]:
    _strings(values)
    # Each day judged and parsed once, and one date object for all its rows: a file's expiry
    # dates repeat, and the import keeps its checked rows pickled (a repeated object is
    # pickled once, then referred to): a date object a row cost a third of that pickling.
    days = set(values)
    if not all(map(_ISO_DAY.fullmatch, days)):
        raise _NotPlain
    parsed = {day: date.fromisoformat(day) for day in days}
    return list(map(parsed.__getitem__, values))
