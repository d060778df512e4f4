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

import hmac
import itertools
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

MAX_ITEMS = 500  # contacts per import, events per trigger-event, items per page
CUSTOMFIELD_TYPES = ("text", "textarea", "date", "checkbox", "radio", "select")
LIST_STATUSES = ("confirmed", "unsubscribed", "removed")
# Stricter than pointbridge's own check (it refuses "a@x..cz", for one), as the real platform
# may well be: that is what exercises the contacts_map path.
_EMAIL = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2})?$")


def valid_email(address: str) -> bool:
    return bool(_EMAIL.match(address)) and ".." not in address


@dataclass
class FakeContact:
    id: int
    emailaddress: str
    name: str | None = None
    surname: str | None = None
    customfields: dict[int, str | None] = field(default_factory=dict)
    contactlists: dict[int, str] = field(default_factory=dict)


class _Reject(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _body(status: str, **extra: Any) -> dict[str, Any]:
    return {"status": status, "meta": [], **extra}


def _answer(payload: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def error_body(status: int) -> bytes:
    """SmartEmailing's error shape, for ``FakeServer(error_body=...)`` injected faults."""
    return json.dumps(_body("error", message=f"Internal error ({status})")).encode()


def throttled(wait: float) -> tuple[int, dict[str, str], bytes]:
    """A 429 (shape UNCONFIRMED: SmartEmailing publishes none) with Retry-After in seconds."""
    seconds = max(1, round(wait + 0.499))
    body = _body("error", message=f"Too many requests, retry in {seconds} s.")
    return 429, {"Retry-After": str(seconds)}, json.dumps(body).encode()


SERVER_OPTIONS: dict[str, Any] = {"error_body": error_body, "throttled": throttled}


class FakeSmartEmailing:
    """The state of one fake SmartEmailing account; every access goes through ``lock``."""

    def __init__(
        self,
        username: str = "shop@example.cz",
        api_key: str = "se-key-1234567890",
        contactlists: dict[int, str] | None = None,
    ) -> None:
        self.username = username
        self.api_key = api_key
        self.lock = threading.RLock()
        self.contacts: dict[str, FakeContact] = {}  # by lower-cased e-mail
        self.customfields: dict[int, dict[str, Any]] = {}
        self.contactlists: dict[int, dict[str, Any]] = {
            list_id: {"id": list_id, "name": name}
            for list_id, name in (contactlists or {1: "Newsletter"}).items()
        }
        self.events: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    # Helpers for tests.
    def add_customfield(self, name: str, type_: str = "text") -> int:
        with self.lock:
            field_id = next(self._ids)
            self.customfields[field_id] = {"id": field_id, "name": name, "type": type_}
            return field_id

    def field_id(self, name: str) -> int:
        with self.lock:
            return min(i for i, f in self.customfields.items() if f["name"] == name)

    def field_values(self, email: str) -> dict[str, str | None]:
        """A contact's custom-field values by field name."""
        with self.lock:
            contact = self.contacts[email.lower()]
            return {
                self.customfields[field_id]["name"]: value
                for field_id, value in contact.customfields.items()
                if field_id in self.customfields
            }

    def add_contact(self, email: str, contactlists: dict[int, str] | None = None) -> FakeContact:
        with self.lock:
            contact = FakeContact(next(self._ids), email.lower(), contactlists=contactlists or {})
            self.contacts[contact.emailaddress] = contact
            return contact

    # The API: one method per route, called under ``lock`` with the request's JSON body.
    def authorized(self) -> bool:
        auth = request.authorization
        if auth is None or auth.type != "basic":
            return False
        return hmac.compare_digest(str(auth.username), self.username) and hmac.compare_digest(
            str(auth.password), self.api_key
        )

    def check_credentials(self, body: Any) -> Response:
        return _answer(_body("ok", message="Hi there! Your credentials are valid!", account_id=2))

    def list_customfields(self, body: Any) -> Response:
        return _paged(self.customfields)

    def list_contactlists(self, body: Any) -> Response:
        return _paged(self.contactlists)

    def create_customfield(self, body: Any) -> Response:
        if not isinstance(body, dict):
            raise _Reject(400, "Request body must be a JSON object")
        name, type_ = body.get("name"), body.get("type")
        if not isinstance(name, str) or not name.strip():
            raise _Reject(422, "Property 'name' is required")
        if type_ not in CUSTOMFIELD_TYPES:
            raise _Reject(422, f"Property 'type' must be one of: {', '.join(CUSTOMFIELD_TYPES)}")
        # Duplicate names are accepted (UNCONFIRMED): the dangerous case, so reuse is tested.
        field_id = self.add_customfield(name, type_)
        data = {"id": field_id, "options": None, "name": name, "type": type_}
        return _answer(_body("created", data=data), 201)

    def _check_customfields(self, values: Any) -> dict[int, str | None]:
        if not isinstance(values, list):
            raise _Reject(422, "customfields must be an array")
        out: dict[int, str | None] = {}
        for item in values:
            if not isinstance(item, dict) or "id" not in item:
                raise _Reject(422, "Each customfield needs an id")
            field_def = self.customfields.get(int(item["id"]))
            if field_def is None:
                raise _Reject(422, f"Customfield {item['id']} does not exist")
            value = item.get("value")
            if value is not None and not isinstance(value, str | int | float):
                raise _Reject(422, f"Customfield {item['id']}: value must be a string")
            text = None if value is None else str(value)
            if field_def["type"] == "date" and text is not None and not _DATE.match(text):
                raise _Reject(
                    422, f"Customfield {item['id']}: '{text}' is not a date (YYYY-MM-DD HH:MM:SS)"
                )
            out[field_def["id"]] = text
        return out

    def _check_lists(self, values: Any) -> dict[int, str]:
        if not isinstance(values, list):
            raise _Reject(422, "contactlists must be an array")
        out: dict[int, str] = {}
        for item in values:
            if not isinstance(item, dict):
                raise _Reject(422, "Each contactlist must be an object with id and status")
            if int(item.get("id", 0)) not in self.contactlists:
                raise _Reject(422, f"Contactlist {item.get('id')} does not exist")
            status = item.get("status", "confirmed")
            if status not in LIST_STATUSES:
                raise _Reject(422, f"Contactlist status must be one of: {', '.join(LIST_STATUSES)}")
            out[int(item["id"])] = status
        return out

    def import_contacts(self, body: Any) -> Response:
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise _Reject(422, "Property 'data' must be an array of contacts")
        settings = body.get("settings") or {}
        items = _at_most(body["data"], "contacts per import")
        # Validate everything first: a 422 must leave the account untouched, as a real one would.
        accepted: list[tuple[str, dict[str, Any], dict[int, str | None], dict[int, str]]] = []
        for item in items:
            if not isinstance(item, dict):
                raise _Reject(422, "Each contact must be an object")
            email = str(item.get("emailaddress") or "").strip()
            if not valid_email(email):
                if settings.get("skip_invalid_emails", False):
                    continue
                raise _Reject(422, f"Emailaddress '{email}' is not valid")
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
        return _answer(_body("created", contacts_map=contacts_map, double_opt_in_map=[]), 201)

    def trigger_event(self, body: Any) -> Response:
        # The PHP client sends an array; a single object is accepted too (UNCONFIRMED).
        events = _at_most([body] if isinstance(body, dict) else body, "events per request")
        if not events:
            raise _Reject(422, "Request body must be an array of events")
        for event in events:
            if not isinstance(event, dict):
                raise _Reject(422, "Each event must be an object")
            if not valid_email(str(event.get("emailaddress") or "")):
                raise _Reject(422, f"Emailaddress '{event.get('emailaddress')}' is not valid")
            if not isinstance(event.get("name"), str) or not event["name"]:
                raise _Reject(422, "Property 'name' is required")
            if not isinstance(event.get("payload", {}), dict):
                raise _Reject(422, "Property 'payload' must be an object")
        for event in events:
            email = str(event["emailaddress"]).lower()
            if email not in self.contacts:
                self.add_contact(email)  # SmartEmailing creates the contact an event names
            self.events.append(
                {"emailaddress": email, "name": event["name"], "payload": event.get("payload", {})}
            )
        return _answer(_body("created"), 201)


def _at_most(items: Any, what: str) -> list[Any]:
    if not isinstance(items, list):
        raise _Reject(422, f"Expected an array of {what.split()[0]}")
    if len(items) > MAX_ITEMS:
        raise _Reject(422, f"Maximum of {MAX_ITEMS} {what} exceeded ({len(items)})")
    return items


def _paged(by_id: dict[int, dict[str, Any]]) -> Response:
    try:
        offset = int(request.args.get("offset", 0))
        limit = int(request.args.get("limit", 100))
    except ValueError as exc:
        raise _Reject(400, "offset and limit must be integers") from exc
    if offset < 0 or not 1 <= limit <= MAX_ITEMS:
        raise _Reject(400, f"limit must be between 1 and {MAX_ITEMS}, offset at least 0")
    page = [dict(item) for _, item in sorted(by_id.items())[offset : offset + limit]]
    meta = {"total_count": len(by_id), "displayed_count": len(page), "offset": offset}
    return _answer({"status": "ok", "meta": {**meta, "limit": limit}, "data": page})


ROUTES: dict[tuple[str, str], Callable[[FakeSmartEmailing, Any], Response]] = {
    ("GET", "check-credentials"): FakeSmartEmailing.check_credentials,
    ("GET", "customfields"): FakeSmartEmailing.list_customfields,
    ("POST", "customfields"): FakeSmartEmailing.create_customfield,
    ("GET", "contactlists"): FakeSmartEmailing.list_contactlists,
    ("POST", "import"): FakeSmartEmailing.import_contacts,
    ("POST", "trigger-event"): FakeSmartEmailing.trigger_event,
}


def create_app(state: FakeSmartEmailing | None = None) -> Flask:
    """The fake's Flask app, served at the root and under /api/v3 (api_url may be either form);
    the state is ``app.extensions["smartemailing"]``."""
    fake = state or FakeSmartEmailing()
    app = Flask(__name__)
    app.extensions["smartemailing"] = fake

    @app.errorhandler(_Reject)
    def _rejected(exc: _Reject) -> Response:
        return _answer(_body("error", message=exc.message), exc.status)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        return _answer(_body("error", message=exc.name), exc.code or 500)

    @app.route("/<path:path>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def dispatch(path: str) -> Response:
        route = ROUTES.get((request.method, path.removeprefix("api/v3/").strip("/")))
        if route is None:
            raise _Reject(404, "Not found")
        if not fake.authorized():
            raise _Reject(401, "Unauthorized: invalid username or API key")
        try:
            body = json.loads(request.get_data() or b"null")
        except ValueError as exc:
            raise _Reject(400, "Request body is not valid JSON") from exc
        with fake.lock:
            return route(fake, body)

    return app
