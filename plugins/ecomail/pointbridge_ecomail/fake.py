"""A fake Ecomail (API v2) for tests and benchmarks: wrap ``create_app`` in ``FakeServer``.

It follows docs.ecomail.cz where the docs speak, and picks the likeliest behaviour where they
do not (marked UNCONFIRMED; see the plugin README)::

    account = FakeEcomail(api_key="k")
    list_id = account.add_list("Newsletter")
    with FakeServer(create_app(account), **SERVER_OPTIONS) as server:
        ...  # point api_url at server.url
    account.contacts["jan@example.com"]["custom_fields"]["ellity_credit"]

What it enforces: the ``key`` header (401 otherwise), JSON bodies, ``subscribe-bulk`` taking the
first 3,000 subscribers and silently ignoring the rest, custom-field keys trimmed and
lower-cased (two keys equal after that: 422), 5,000 characters of custom fields per subscriber,
typed values creating typed list fields, no resubscribing of unsubscribed contacts unless asked,
a subscriber's ``status`` (1, 2 or 4; 1 when left out) given to one new to the list and
never changing one already there unless ``update_existing`` (and 2 to 1 only with
``resubscribe``), tracker events only for existing subscribers and at most 20,000 characters
of value.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any, NoReturn

from flask import Flask, Response, jsonify

from pointbridge.testing import fakes

BULK_MAX = 3000
CUSTOM_FIELDS_MAX_CHARS = 5000
EVENT_VALUE_MAX_CHARS = 20_000
VALUE_TYPES = {"string", "int", "float", "date", "json", "url"}

SUBSCRIBED = 1
UNSUBSCRIBED = 2
# What a subscribe-bulk item's ``status`` may be (documented): subscribed, unsubscribed, bounced.
BULK_STATUSES = (SUBSCRIBED, UNSUBSCRIBED, 4)

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


@dataclass
class _Subscriber:
    email: str
    name: Any
    surname: Any
    # key -> (value, the type it declares; None for a plain value)
    values: dict[str, tuple[Any, str | None]]
    status: int | None = None


class FakeEcomail:
    """One Ecomail account's state, shared by the fake app's threads under one lock."""

    def __init__(self, api_key: str = "test-api-key", *, bench: bool = False) -> None:
        self.api_key = api_key
        # Benchmarks: subscribe-bulk counts the addresses and answers, storing nothing.
        self.bench = bench
        self.lock = threading.RLock()
        self.lists: dict[str, FakeList] = {}
        # email -> {"id", "email", "name", "surname", "custom_fields": {...}}; account-wide, as
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
            self._contact(email).update(data)
            self.lists[str(list_id)].members[email.lower()] = status

    def status(self, list_id: str, email: str) -> int | None:
        with self.lock:
            return self.lists[str(list_id)].members.get(email.lower())

    def events_for(self, email: str) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.events if e["email"] == email.lower()]

    def known(self, email: str) -> bool:
        key = email.strip().lower()
        return any(key in lst.members for lst in self.lists.values())

    def _contact(self, email: str) -> dict[str, Any]:
        key = email.strip().lower()
        blank = {"id": None, "email": key, "name": None, "surname": None, "custom_fields": {}}
        if key not in self.contacts:
            self.contacts[key] = {**blank, "id": next(self._ids)}
        return self.contacts[key]

    def subscribe(
        self, lst: FakeList, sub: _Subscriber, *, update_existing: bool, resubscribe: bool
    ) -> None:
        status = lst.members.get(sub.email)
        if status is not None and not update_existing:
            return
        contact = self._contact(sub.email)
        contact.update({k: v for k, v in (("name", sub.name), ("surname", sub.surname)) if v})
        for key, (value, type_) in sub.values.items():
            contact["custom_fields"][key] = value
            # UNCONFIRMED (likeliest reading of the docs): the first write defines the field.
            lst.custom_fields.setdefault(key, {"type": type_ or "string", "name": key})
        # Bulk subscribe always skips double opt-in (documented); a new subscriber is status 1
        # unless its item says otherwise.
        wanted = SUBSCRIBED if sub.status is None else sub.status
        if status is None:
            lst.members[sub.email] = wanted
        elif status == UNSUBSCRIBED and wanted == SUBSCRIBED:
            if resubscribe:
                lst.members[sub.email] = SUBSCRIBED
        elif sub.status is not None:
            lst.members[sub.email] = sub.status


# UNCONFIRMED: Ecomail's error body shape is not documented; this is Laravel's, which its
# timestamps and pagination suggest it runs on.
errors = fakes.JsonErrors(
    lambda status, message, invalid=None: (
        {"message": message} | ({"errors": invalid} if invalid else {})
    )
)


def _invalid(key: str, problem: str) -> NoReturn:
    errors.fail(422, "The given data was invalid.", {key: [problem]})


_bad_subscribers = functools.partial(_invalid, "subscriber_data")


def error_body(status: int) -> bytes:
    """For ``FakeServer(error_body=...)``: injected 5xx answers in the same shape."""
    return errors.body(status, "Server Error" if status >= 500 else "Error")


def throttled(wait: float) -> tuple[int, dict[str, str], bytes]:
    """For ``FakeServer(throttled=...)``: Ecomail's 429, ``Retry-After`` in whole seconds."""
    headers = {"Retry-After": str(max(1, round(wait))), "X-RateLimit-Remaining": "0"}
    return fakes.too_many_requests({"message": "Too Many Attempts."}, headers)


# ``FakeServer(create_app(account), **SERVER_OPTIONS)`` answers faults the way Ecomail does.
SERVER_OPTIONS: dict[str, Any] = {"error_body": error_body, "throttled": throttled}


def _value(key: str, raw: Any) -> tuple[Any, str | None]:
    """A custom-field value as stored, and the type it declares (``None`` for plain values)."""
    if not isinstance(raw, dict):
        if raw is not None and not isinstance(raw, str | int | float):
            _invalid(key, "The value must be a string or a {value, type} object.")
        return raw, None
    type_, value = raw.get("type"), raw.get("value")
    if type_ not in VALUE_TYPES:
        _invalid(key, f"The type must be one of {', '.join(sorted(VALUE_TYPES))}.")
    if type_ == "int" and value is not None and not isinstance(value, int):
        _invalid(key, "The value must be an integer.")
    if type_ == "date" and value not in (None, "") and not _DATE.match(str(value)):
        _invalid(key, "The value must be a date (YYYY-MM-DD).")
    return value, type_


def _subscriber(item: dict[str, Any], where: str) -> _Subscriber:
    """One ``subscriber_data`` item, checked the way a request validator would."""
    email = item.get("email")
    if not isinstance(email, str) or not _EMAIL.match(email.strip()):
        _invalid(f"{where}.email", "The email must be a valid email address.")
    fields_in = item.get("custom_fields") or {}
    size = len(json.dumps(fields_in, ensure_ascii=False, separators=(",", ":")))
    if not isinstance(fields_in, dict) or size > CUSTOM_FIELDS_MAX_CHARS:
        _invalid(f"{where}.custom_fields", f"An object of at most {CUSTOM_FIELDS_MAX_CHARS} chars.")
    values: dict[str, tuple[Any, str | None]] = {}
    for raw_key, raw in fields_in.items():
        # Documented: keys are trimmed and lower-cased; two that collide are rejected.
        key = str(raw_key).strip().lower()
        if key in values:
            _invalid(f"{where}.custom_fields.{key}", "Duplicate custom field key.")
        values[key] = _value(f"{where}.custom_fields.{key}", raw)
    status = item.get("status")
    if status is not None and status not in BULK_STATUSES:
        _invalid(f"{where}.status", "The selected status is invalid.")
    return _Subscriber(email.strip().lower(), item.get("name"), item.get("surname"), values, status)


def create_app(account: FakeEcomail) -> Flask:
    app = Flask("fake_ecomail")
    fakes.require_auth(
        app,
        lambda: fakes.header_is("key", account.api_key),
        lambda: errors.response(401, "Unauthorized"),
    )

    def the_list(list_id: str) -> FakeList:
        return account.lists.get(list_id) or errors.fail(404, "List not found")

    @app.get("/lists")
    def lists() -> Response:
        with account.lock:
            return jsonify([{"id": int(x.id), "name": x.name} for x in account.lists.values()])

    @app.get("/lists/<list_id>")
    def list_detail(list_id: str) -> Response:
        with account.lock:
            lst = the_list(list_id)
            fields = {k: dict(v) for k, v in lst.custom_fields.items()}
            return jsonify({"list": {"id": lst.id, "name": lst.name, "custom_fields": fields}})

    @app.post("/lists/<list_id>/subscribe-bulk")
    def subscribe_bulk(list_id: str) -> Response:
        if account.bench:
            return jsonify({"inserts": len(fakes.bench_emails()[:BULK_MAX])})
        body = fakes.json_body(lambda _: _bad_subscribers("A JSON object is required."))
        received = fakes.objects(body.get("subscriber_data"), _bad_subscribers, "subscriber_data")
        with account.lock:
            lst = the_list(list_id)
            # Documented: "Subscribers above the limit are silently ignored."
            taken = received[:BULK_MAX]
            parsed = [_subscriber(item, f"subscriber_data.{n}") for n, item in enumerate(taken)]
            update = body.get("update_existing", True) is not False
            resubscribe = body.get("resubscribe", False) is True
            for sub in parsed:
                account.subscribe(lst, sub, update_existing=update, resubscribe=resubscribe)
            account.bulk_calls.append(
                {k: v for k, v in body.items() if k != "subscriber_data"}
                | {"received": len(received), "taken": len(taken)}
            )
            return jsonify({"inserts": len(taken)})

    @app.post("/tracker/events")
    def track_event() -> Response:
        body = fakes.json_body(lambda _: _invalid("event", "A JSON object is required."))
        event = body.get("event")
        if not isinstance(event, dict) or not isinstance(event.get("email"), str):
            _invalid("event.email", "The event.email field is required.")
        value = event.get("value")
        encoded = value if isinstance(value, str) or value is None else json.dumps(value)
        if encoded is not None and len(encoded) > EVENT_VALUE_MAX_CHARS:
            _invalid("event.value", f"At most {EVENT_VALUE_MAX_CHARS} characters.")
        with account.lock:
            if not account.known(event["email"]):
                # UNCONFIRMED: the docs say the subscriber must exist, not what Ecomail answers.
                errors.fail(404, "Subscriber not found")
            stored = {key: event.get(key) for key in ("category", "action", "label", "property")}
            stored |= {"id": next(account._ids), "email": event["email"].strip().lower()}
            account.events.append(stored | {"value": encoded})
            return jsonify(account.events[-1])

    return app
