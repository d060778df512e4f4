"""A fake SmartEmailing API v3, in memory, for tests, end-to-end runs and benchmarks.

Serve it with ``FakeServer(create_app(fake), **SERVER_OPTIONS)`` and point an integration at it
(``api_url=server.url``, ``username=fake.username``, ``api_key=fake.api_key``); read what
arrived with ``fake.field_values(email)`` and ``fake.events``.

It follows what SmartEmailing documents (and its own PHP client's fixtures mirror): HTTP Basic
auth with the login e-mail and API key, ``{"status": "error", "message": ...}`` error bodies,
at most 500 contacts per ``import``, 422 for an invalid address unless
``settings.skip_invalid_emails``, ``contacts_map`` in the import answer, paged ``customfields``
and ``contactlists`` (``offset``/``limit``, ``meta.total_count``), ``trigger-event`` taking an
array. Where SmartEmailing's behaviour is unconfirmed (429 shape, whether ``trigger-event`` takes
a single object, duplicate field names) it accepts the plausible forms.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, request

from pointbridge.testing import fakes

MAX_ITEMS = 500  # contacts per import, events per trigger-event, items per page
CUSTOMFIELD_TYPES = ("text", "textarea", "date", "checkbox", "radio", "select")
LIST_STATUSES = ("confirmed", "unsubscribed", "removed")
# Stricter than pointbridge's own check (it refuses "a@x..cz", for one), as the real platform
# may well be: that is what exercises the contacts_map path.
_EMAIL = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2})?$")


def valid_email(address: str) -> bool:
    return bool(_EMAIL.match(address)) and ".." not in address


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float)


_VALUE_CHECKS = {type_: _scalar for type_ in CUSTOMFIELD_TYPES} | {
    "date": lambda value: _scalar(value) and (value is None or bool(_DATE.match(str(value))))
}


def _body(status: str, **extra: Any) -> dict[str, Any]:
    return {"status": status, "meta": [], **extra}


errors = fakes.JsonErrors(lambda status, message: _body("error", message=message))
_invalid, _bad_request = errors.reject(422), errors.reject(400)


def error_body(status: int) -> bytes:
    """SmartEmailing's error shape, for ``FakeServer(error_body=...)`` injected faults."""
    return errors.body(status, f"Internal error ({status})")


def throttled(wait: float) -> tuple[int, dict[str, str], bytes]:
    """A 429 (shape UNCONFIRMED: SmartEmailing publishes none) with Retry-After in seconds."""
    seconds = fakes.whole_seconds(wait)
    body = _body("error", message=f"Too many requests, retry in {seconds} s.")
    return fakes.too_many_requests(body, {"Retry-After": str(seconds)})


SERVER_OPTIONS: dict[str, Any] = {"error_body": error_body, "throttled": throttled}


@dataclass
class FakeContact:
    id: int
    emailaddress: str
    name: str | None = None
    surname: str | None = None
    customfields: dict[int, str | None] = field(default_factory=dict)
    contactlists: dict[int, str] = field(default_factory=dict)


class FakeSmartEmailing:
    """The state of one fake SmartEmailing account; every access goes through ``lock``."""

    def __init__(
        self,
        username: str = "shop@example.cz",
        api_key: str = "se-key-1234567890",
        contactlists: dict[int, str] | None = None,
        *,
        bench: bool = False,
    ) -> None:
        # Benchmarks: an import maps the addresses it names and answers, storing nothing.
        self.bench = bench
        self.username = username
        self.api_key = api_key
        self.lock = threading.RLock()
        self.contacts: dict[str, FakeContact] = {}  # by lower-cased e-mail
        self._ids = itertools.count(1)  # contacts and custom fields share one id sequence
        self.customfields = fakes.FieldStore(_VALUE_CHECKS, ids=self._ids)
        self.contactlists: dict[int, dict[str, Any]] = {
            list_id: {"id": list_id, "name": name}
            for list_id, name in (contactlists or {1: "Newsletter"}).items()
        }
        self.events: list[dict[str, Any]] = []

    # Helpers for tests.
    def add_customfield(self, name: str, type_: str = "text") -> int:
        with self.lock:
            return int(self.customfields.add(name, type_)["id"])

    def field_id(self, name: str) -> int:
        with self.lock:
            return int(self.customfields.named(name)["id"])  # type: ignore[index]

    def field_values(self, email: str) -> dict[str, str | None]:
        """A contact's custom-field values by field name."""
        with self.lock:
            return self.customfields.by_name(self.contacts[email.lower()].customfields)

    def add_contact(self, email: str, contactlists: dict[int, str] | None = None) -> FakeContact:
        with self.lock:
            contact = FakeContact(next(self._ids), email.lower(), contactlists=contactlists or {})
            self.contacts[contact.emailaddress] = contact
            return contact

    # The API: one method per route, called under ``lock`` with the request's JSON body.
    def check_credentials(self, body: Any) -> Response:
        message = "Hi there! Your credentials are valid!"
        return fakes.json_response(_body("ok", message=message, account_id=2))

    def create_customfield(self, body: Any) -> Response:
        if not isinstance(body, dict):
            _bad_request("Request body must be a JSON object")
        name, type_ = body.get("name"), body.get("type")
        if not isinstance(name, str) or not name.strip():
            _invalid("Property 'name' is required")
        if type_ not in CUSTOMFIELD_TYPES:
            _invalid(f"Property 'type' must be one of: {', '.join(CUSTOMFIELD_TYPES)}")
        # Duplicate names are accepted (UNCONFIRMED): the dangerous case, so reuse is tested.
        data = {"id": self.add_customfield(name, type_), "options": None, "name": name}
        return fakes.json_response(_body("created", data=data | {"type": type_}), 201)

    def _check_customfields(self, values: Any) -> dict[int, str | None]:
        checked: dict[int, str | None] = {}
        for item in fakes.objects(values, _invalid, "customfields"):
            value = item.get("value")
            try:
                spec = self.customfields.check(int(item.get("id", 0)), value)
            except fakes.FieldError as exc:
                _invalid(str(exc))
            checked[spec["id"]] = None if value is None else str(value)
        return checked

    def _check_lists(self, values: Any) -> dict[int, str]:
        out: dict[int, str] = {}
        for item in fakes.objects(values, _invalid, "contactlists"):
            if int(item.get("id", 0)) not in self.contactlists:
                _invalid(f"Contactlist {item.get('id')} does not exist")
            status = item.get("status", "confirmed")
            if status not in LIST_STATUSES:
                _invalid(f"Contactlist status must be one of: {', '.join(LIST_STATUSES)}")
            out[int(item["id"])] = status
        return out

    def bench_import(self) -> Response:
        contacts_map = [
            {"emailaddress": email.lower(), "contact_id": n}
            for n, email in enumerate(fakes.bench_emails()[:MAX_ITEMS], 1)
        ]
        answer = _body("created", contacts_map=contacts_map, double_opt_in_map=[])
        return fakes.json_response(answer, 201)

    def import_contacts(self, body: Any) -> Response:
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            _invalid("Property 'data' must be an array of contacts")
        settings = body.get("settings") or {}
        # Validate everything first: a 422 must leave the account untouched, as a real one would.
        accepted: list[tuple[str, dict[str, Any], dict[int, str | None], dict[int, str]]] = []
        for item in fakes.objects(body["data"], _invalid, "data", most=MAX_ITEMS):
            email = str(item.get("emailaddress") or "").strip()
            if not valid_email(email):
                if settings.get("skip_invalid_emails", False):
                    continue
                _invalid(f"Emailaddress '{email}' is not valid")
            fields = self._check_customfields(item.get("customfields", []))
            lists = self._check_lists(item.get("contactlists", []))
            accepted.append((email.lower(), item, fields, lists))
        contacts_map = []
        for email, item, fields, lists in accepted:
            contact = self.contacts.get(email)
            if contact is None or settings.get("update", True):
                contact = contact or self.add_contact(email)
                for key in ("name", "surname"):
                    if key in item:
                        setattr(contact, key, item[key])
                contact.customfields.update(fields)
            for list_id, status in lists.items():
                kept = contact.contactlists.get(list_id) == "unsubscribed"
                if not (kept and settings.get("preserve_unsubscribed", True)):
                    contact.contactlists[list_id] = status
            contacts_map.append({"emailaddress": email, "contact_id": contact.id})
        answer = _body("created", contacts_map=contacts_map, double_opt_in_map=[])
        return fakes.json_response(answer, 201)

    def trigger_event(self, body: Any) -> Response:
        # The PHP client sends an array; a single object is accepted too (UNCONFIRMED).
        events = fakes.objects(
            [body] if isinstance(body, dict) else body, _invalid, "events", most=MAX_ITEMS
        )
        if not events:
            _invalid("Request body must be an array of events")
        for event in events:
            if not valid_email(str(event.get("emailaddress") or "")):
                _invalid(f"Emailaddress '{event.get('emailaddress')}' is not valid")
            if not isinstance(event.get("name"), str) or not event["name"]:
                _invalid("Property 'name' is required")
            if not isinstance(event.get("payload", {}), dict):
                _invalid("Property 'payload' must be an object")
        for event in events:
            email = str(event["emailaddress"]).lower()
            if email not in self.contacts:
                self.add_contact(email)  # SmartEmailing creates the contact an event names
            self.events.append(
                {"emailaddress": email, "name": event["name"], "payload": event.get("payload", {})}
            )
        return fakes.json_response(_body("created"), 201)


def _paged(by_id: Mapping[int, dict[str, Any]]) -> Response:
    listed = [dict(item) for _, item in sorted(by_id.items())]
    page, offset, limit = fakes.offset_page(listed, _bad_request, max_limit=MAX_ITEMS)
    meta = {"total_count": len(by_id), "displayed_count": len(page), "offset": offset}
    return fakes.json_response({"status": "ok", "meta": {**meta, "limit": limit}, "data": page})


ROUTES: dict[tuple[str, str], Callable[[FakeSmartEmailing, Any], Response]] = {
    ("GET", "check-credentials"): FakeSmartEmailing.check_credentials,
    ("GET", "customfields"): lambda fake, body: _paged(fake.customfields),
    ("POST", "customfields"): FakeSmartEmailing.create_customfield,
    ("GET", "contactlists"): lambda fake, body: _paged(fake.contactlists),
    ("POST", "import"): FakeSmartEmailing.import_contacts,
    ("POST", "trigger-event"): FakeSmartEmailing.trigger_event,
}


def create_app(state: FakeSmartEmailing | None = None) -> Flask:
    """The fake's Flask app, served at the root and under /api/v3 (api_url may be either form);
    the state is ``app.extensions["smartemailing"]``."""
    fake = state or FakeSmartEmailing()
    app = Flask(__name__)
    app.extensions["smartemailing"] = fake
    errors.answer_http_errors(app)
    fakes.require_auth(
        app,
        lambda: fakes.basic_auth_is(fake.username, fake.api_key),
        lambda: errors.response(401, "Unauthorized: invalid username or API key"),
    )

    @app.route("/<path:path>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def dispatch(path: str) -> Response:
        key = (request.method, path.removeprefix("api/v3/").strip("/"))
        if fake.bench and key == ("POST", "import"):
            return fake.bench_import()
        route = ROUTES.get(key)
        if route is None:
            errors.fail(404, "Not found")
        body = fakes.json_body(_bad_request, object_only=False)
        with fake.lock:
            return route(fake, body)

    return app
