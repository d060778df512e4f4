"""A fake Ecomail (API v2) for tests and benchmarks: wrap ``create_app`` in ``FakeServer``.

It follows docs.ecomail.cz where the docs speak, and picks the likeliest behaviour where they
do not (marked UNCONFIRMED; see the plugin README)::

    account = FakeEcomail(api_key="k")
    list_id = account.add_list("Newsletter")
    with FakeServer(create_app(account), **fake_server_kwargs()) as server:
        ...  # point api_url at server.url
    account.contacts["jan@example.com"]["custom_fields"]["ellity_credit"]

What it enforces: the ``key`` header (401 otherwise), JSON bodies, ``subscribe-bulk`` taking the
first 3,000 subscribers and silently ignoring the rest, custom-field keys trimmed and
lower-cased (two keys equal after that: 422), 5,000 characters of custom fields per subscriber,
typed values creating typed list fields, no resubscribing of unsubscribed contacts unless asked,
tracker events only for existing subscribers and at most 20,000 characters of value.
"""

from __future__ import annotations

import hmac
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, jsonify, request

from pointbridge.testing import RateLimitRule

BULK_MAX = 3000
CUSTOM_FIELDS_MAX_CHARS = 5000
EVENT_VALUE_MAX_CHARS = 20_000
VALUE_TYPES = {"string", "int", "float", "date", "json", "url"}

SUBSCRIBED = 1
UNSUBSCRIBED = 2
HARD_BOUNCE = 4
SPAM_COMPLAINT = 5
UNCONFIRMED = 6

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}(:\d{2})?)?$")


@dataclass
class FakeList:
    id: str
    name: str
    # name -> {"type": ..., "name": ...}, as ``GET lists/{id}`` shows them
    custom_fields: dict[str, dict[str, str]] = field(default_factory=dict)
    # email -> status (1 subscribed, 2 unsubscribed, 4 hard bounce, 5 spam, 6 unconfirmed)
    members: dict[str, int] = field(default_factory=dict)


class FakeEcomail:
    """One Ecomail account's state, shared by the fake app's threads under one lock."""

    def __init__(self, api_key: str = "test-api-key") -> None:
        self.api_key = api_key
        self.lock = threading.RLock()
        self.lists: dict[str, FakeList] = {}
        # email -> {"email", "name", "surname", "custom_fields": {...}}; account-wide, as
        # Ecomail keeps one contact per address across lists.
        self.contacts: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        # Every subscribe-bulk body accepted, for assertions on flags and sizes.
        self.bulk_calls: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    def add_list(self, name: str, list_id: str | int | None = None) -> str:
        with self.lock:
            key = str(list_id if list_id is not None else len(self.lists) + 1)
            self.lists[key] = FakeList(key, name)
            return key

    def add_field(self, list_id: str, name: str, type_: str = "string") -> None:
        with self.lock:
            key = name.strip().lower()
            self.lists[str(list_id)].custom_fields[key] = {"type": type_, "name": key}

    def add_subscriber(
        self, list_id: str, email: str, status: int = SUBSCRIBED, **data: Any
    ) -> None:
        with self.lock:
            contact = self._contact(email)
            contact.update({k: v for k, v in data.items() if k != "custom_fields"})
            contact["custom_fields"].update(data.get("custom_fields") or {})
            self.lists[str(list_id)].members[email.lower()] = status

    def status(self, list_id: str, email: str) -> int | None:
        with self.lock:
            return self.lists[str(list_id)].members.get(email.lower())

    def events_for(self, email: str) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.events if e["email"] == email.lower()]

    def _contact(self, email: str) -> dict[str, Any]:
        key = email.strip().lower()
        if key not in self.contacts:
            self.contacts[key] = {
                "id": next(self._ids),
                "email": key,
                "name": None,
                "surname": None,
                "custom_fields": {},
            }
        return self.contacts[key]

    def known(self, email: str) -> bool:
        key = email.strip().lower()
        return any(key in lst.members for lst in self.lists.values())


def _error(status: int, message: str, errors: dict[str, list[str]] | None = None) -> Response:
    # UNCONFIRMED: Ecomail's error body shape is not documented; this is Laravel's, which its
    # timestamps and pagination suggest it runs on.
    body: dict[str, Any] = {"message": message}
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    return response


def error_body(status: int) -> bytes:
    """For ``FakeServer(error_body=...)``: injected 5xx answers in the same shape."""
    return json.dumps({"message": "Server Error" if status >= 500 else "Error"}).encode()


def rate_limit_rule(calls: int = 1000, per_seconds: float = 60) -> RateLimitRule:
    """Ecomail's 1,000 requests a minute per key; 429 with ``Retry-After`` in whole seconds."""

    def respond(wait: float) -> tuple[int, dict[str, str], bytes]:
        return (
            429,
            {
                "Retry-After": str(max(1, round(wait))),
                "X-RateLimit-Limit": str(calls),
                "X-RateLimit-Remaining": "0",
            },
            b'{"message":"Too Many Attempts."}',
        )

    return RateLimitRule(calls, per_seconds, respond=respond)


def _normalize_value(key: str, raw: Any, errors: dict[str, list[str]]) -> tuple[Any, str | None]:
    """A custom-field value as stored, and the type it declares (``None`` for plain values)."""
    if isinstance(raw, dict):
        type_ = raw.get("type")
        if type_ not in VALUE_TYPES:
            errors[key] = [f"The type must be one of {', '.join(sorted(VALUE_TYPES))}."]
            return None, None
        value = raw.get("value")
        if type_ == "int" and value is not None and not isinstance(value, int):
            errors[key] = ["The value must be an integer."]
        if (
            type_ == "date"
            and value not in (None, "")
            and not (isinstance(value, str) and _DATE.match(value))
        ):
            errors[key] = ["The value must be a date (YYYY-MM-DD)."]
        return value, type_
    if raw is not None and not isinstance(raw, str | int | float):
        errors[key] = ["The value must be a string or a {value, type} object."]
    return raw, None


@dataclass
class _Subscriber:
    email: str
    name: Any
    surname: Any
    values: dict[str, tuple[Any, str | None]]


def _parse_subscriber(item: Any, where: str) -> tuple[_Subscriber | None, dict[str, list[str]]]:
    """One ``subscriber_data`` item, checked the way a request validator would."""
    if not isinstance(item, dict):
        return None, {where: ["Each subscriber must be an object."]}
    email = item.get("email")
    if not isinstance(email, str) or not _EMAIL.match(email.strip()):
        return None, {f"{where}.email": ["The email must be a valid email address."]}
    fields_in = item.get("custom_fields") or {}
    if not isinstance(fields_in, dict):
        return None, {f"{where}.custom_fields": ["The custom fields must be an object."]}
    size = len(json.dumps(fields_in, ensure_ascii=False, separators=(",", ":")))
    if size > CUSTOM_FIELDS_MAX_CHARS:
        return None, {f"{where}.custom_fields": [f"At most {CUSTOM_FIELDS_MAX_CHARS} characters."]}
    errors: dict[str, list[str]] = {}
    values: dict[str, tuple[Any, str | None]] = {}
    for raw_key, raw in fields_in.items():
        # Documented: keys are trimmed and lower-cased; two that collide are rejected.
        key = str(raw_key).strip().lower()
        if key in values:
            errors[f"{where}.custom_fields.{key}"] = ["Duplicate custom field key."]
            continue
        values[key] = _normalize_value(f"{where}.custom_fields.{key}", raw, errors)
    if errors:
        return None, errors
    return _Subscriber(email.strip().lower(), item.get("name"), item.get("surname"), values), {}


def _store(
    account: FakeEcomail,
    lst: FakeList,
    sub: _Subscriber,
    *,
    update_existing: bool,
    resubscribe: bool,
) -> None:
    existing_status = lst.members.get(sub.email)
    if existing_status is not None and not update_existing:
        return
    contact = account._contact(sub.email)
    if sub.name is not None:
        contact["name"] = sub.name
    if sub.surname is not None:
        contact["surname"] = sub.surname
    for key, (value, type_) in sub.values.items():
        contact["custom_fields"][key] = value
        # UNCONFIRMED (likeliest reading of the docs): the first write defines the field.
        if key not in lst.custom_fields:
            lst.custom_fields[key] = {"type": type_ or "string", "name": key}
    if existing_status is None:
        # Bulk subscribe always skips double opt-in (documented).
        lst.members[sub.email] = SUBSCRIBED
    elif existing_status == UNSUBSCRIBED and resubscribe:
        lst.members[sub.email] = SUBSCRIBED


def create_app(account: FakeEcomail) -> Flask:
    app = Flask("fake_ecomail")
    app.config["ECOMAIL"] = account

    @app.before_request
    def check_key() -> Response | None:
        given = request.headers.get("key", "")
        if not given or not hmac.compare_digest(given.encode(), account.api_key.encode()):
            return _error(401, "Unauthorized")
        return None

    def json_body() -> Any:
        return request.get_json(silent=True)

    def list_or_404(list_id: str) -> FakeList | Response:
        lst = account.lists.get(list_id)
        if lst is None:
            return _error(404, "List not found")
        return lst

    @app.get("/lists")
    def lists() -> Response:
        with account.lock:
            return jsonify(
                [{"id": int(lst.id), "name": lst.name} for lst in account.lists.values()]
            )

    @app.get("/lists/<list_id>")
    def list_detail(list_id: str) -> Response:
        with account.lock:
            lst = list_or_404(list_id)
            if isinstance(lst, Response):
                return lst
            counts = {"subscribed": 0, "unsubscribed": 0, "unconfirmed": 0}
            for status in lst.members.values():
                if status == SUBSCRIBED:
                    counts["subscribed"] += 1
                elif status == UNSUBSCRIBED:
                    counts["unsubscribed"] += 1
                elif status == UNCONFIRMED:
                    counts["unconfirmed"] += 1
            return jsonify(
                {
                    "list": {
                        "id": lst.id,
                        "name": lst.name,
                        "custom_fields": {k: dict(v) for k, v in lst.custom_fields.items()},
                        "active_subscribers": counts["subscribed"],
                    },
                    "subscribers": counts,
                }
            )

    @app.post("/lists/<list_id>/subscribe-bulk")
    def subscribe_bulk(list_id: str) -> Response:
        body = json_body()
        if not isinstance(body, dict) or not isinstance(body.get("subscriber_data"), list):
            return _error(
                422,
                "The subscriber data field is required.",
                {"subscriber_data": ["The subscriber data field is required."]},
            )
        with account.lock:
            lst = list_or_404(list_id)
            if isinstance(lst, Response):
                return lst
            # Documented: "Subscribers above the limit are silently ignored."
            taken = body["subscriber_data"][:BULK_MAX]
            errors: dict[str, list[str]] = {}
            parsed: list[_Subscriber] = []
            for index, item in enumerate(taken):
                sub, found = _parse_subscriber(item, f"subscriber_data.{index}")
                errors.update(found)
                if sub is not None:
                    parsed.append(sub)
            if errors:
                return _error(422, "The given data was invalid.", errors)
            update_existing = body.get("update_existing", True) is not False
            resubscribe = body.get("resubscribe", False) is True
            for sub in parsed:
                _store(account, lst, sub, update_existing=update_existing, resubscribe=resubscribe)
            account.bulk_calls.append(
                {k: v for k, v in body.items() if k != "subscriber_data"}
                | {"received": len(body["subscriber_data"]), "taken": len(taken)}
            )
            return jsonify({"inserts": len(taken)})

    @app.delete("/lists/<list_id>/unsubscribe")
    def unsubscribe(list_id: str) -> Response:
        body = json_body()
        email = body.get("email") if isinstance(body, dict) else None
        with account.lock:
            lst = list_or_404(list_id)
            if isinstance(lst, Response):
                return lst
            if not isinstance(email, str) or email.lower() not in lst.members:
                return _error(404, "Subscriber not found")
            lst.members[email.lower()] = UNSUBSCRIBED
            return jsonify({"list_id": int(lst.id), "email": email.lower(), "status": 2})

    @app.get("/lists/<list_id>/subscriber/<email>")
    def get_subscriber(list_id: str, email: str) -> Response:
        with account.lock:
            lst = list_or_404(list_id)
            if isinstance(lst, Response):
                return lst
            status = lst.members.get(email.lower())
            if status is None:
                return _error(404, "Subscriber not found")
            contact = account.contacts[email.lower()]
            return jsonify({"subscriber": {**contact, "list_id": int(lst.id), "status": status}})

    @app.post("/tracker/events")
    def track_event() -> Response:
        body = json_body()
        event = body.get("event") if isinstance(body, dict) else None
        if not isinstance(event, dict) or not isinstance(event.get("email"), str):
            return _error(
                422,
                "The event.email field is required.",
                {"event.email": ["The event.email field is required."]},
            )
        value = event.get("value")
        encoded = value if isinstance(value, str) or value is None else json.dumps(value)
        if encoded is not None and len(encoded) > EVENT_VALUE_MAX_CHARS:
            return _error(
                422,
                "The event.value may not be greater than 20000 characters.",
                {"event.value": ["The event.value may not be greater than 20000 characters."]},
            )
        with account.lock:
            if not account.known(event["email"]):
                # UNCONFIRMED: the docs say the subscriber must exist, not what Ecomail answers.
                return _error(404, "Subscriber not found")
            stored = {
                "id": next(account._ids),
                "email": event["email"].strip().lower(),
                "category": event.get("category"),
                "action": event.get("action"),
                "label": event.get("label"),
                "property": event.get("property"),
                "value": encoded,
                "timestamp": datetime.now(UTC).isoformat(),
            }
            account.events.append(stored)
            return jsonify({k: v for k, v in stored.items() if k != "timestamp"})

    return app


def fake_server_kwargs(*, rate_limit: bool = True, **extra: Any) -> dict[str, Any]:
    """The ``FakeServer`` keyword arguments that make it answer like Ecomail."""
    kwargs: dict[str, Any] = {"error_body": error_body}
    if rate_limit:
        kwargs["rate_limits"] = [rate_limit_rule()]
    kwargs.update(extra)
    return kwargs
