"""A fake SmartEmailing API v3, in memory, for tests, end-to-end runs and benchmarks.

Wrap it in ``core.testing.FakeServer``::

    fake = FakeSmartEmailing()
    with FakeServer(create_app(fake), error_body=error_body,
                    rate_limits=[rate_limit_rule(5, 1.0)]) as server:
        ...  # settings: api_url=server.url, username=fake.username, api_key=fake.api_key
        fake.contacts["a@x.cz"].customfields

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
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, request

from pointbridge.testing import RateLimitRule

MAX_IMPORT = 500
MAX_EVENTS = 500
MAX_PAGE = 500
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


def _json_response(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def error_body(status: int) -> bytes:
    """SmartEmailing's error shape, for ``FakeServer(error_body=...)`` injected faults."""
    return json.dumps(_body("error", message=f"Internal error ({status})")).encode()


def throttled(wait: float) -> tuple[int, dict[str, str], bytes]:
    """A 429 (shape UNCONFIRMED: SmartEmailing publishes none) with Retry-After in seconds."""
    seconds = max(1, round(wait + 0.499))
    body = _body("error", message=f"Too many requests, retry in {seconds} s.")
    return 429, {"Retry-After": str(seconds)}, json.dumps(body).encode()


def rate_limit_rule(calls: int, per_seconds: float) -> RateLimitRule:
    return RateLimitRule(calls, per_seconds, respond=throttled)


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
            contact = FakeContact(next(self._ids), email.lower())
            contact.contactlists = dict(contactlists or {})
            self.contacts[contact.emailaddress] = contact
            return contact

    # The API.
    def authorized(self) -> bool:
        auth = request.authorization
        if auth is None or auth.type != "basic":
            return False
        return hmac.compare_digest(str(auth.username), self.username) and hmac.compare_digest(
            str(auth.password), self.api_key
        )

    def _paged(self, items: list[dict[str, Any]]) -> Response:
        try:
            offset = int(request.args.get("offset", 0))
            limit = int(request.args.get("limit", 100))
        except ValueError as exc:
            raise _Reject(400, "offset and limit must be integers") from exc
        if offset < 0 or not 1 <= limit <= MAX_PAGE:
            raise _Reject(400, f"limit must be between 1 and {MAX_PAGE}, offset at least 0")
        page = items[offset : offset + limit]
        meta = {
            "total_count": len(items),
            "displayed_count": len(page),
            "offset": offset,
            "limit": limit,
        }
        return _json_response({"status": "ok", "meta": meta, "data": page})

    def list_customfields(self) -> Response:
        with self.lock:
            items = [dict(f) for _, f in sorted(self.customfields.items())]
        return self._paged(items)

    def list_contactlists(self) -> Response:
        with self.lock:
            items = [dict(f) for _, f in sorted(self.contactlists.items())]
        return self._paged(items)

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
        return _json_response(_body("created", data=data), 201)

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
        update = settings.get("update", True)
        preserve_unsubscribed = settings.get("preserve_unsubscribed", True)
        skip_invalid = settings.get("skip_invalid_emails", False)
        items = body["data"]
        if len(items) > MAX_IMPORT:
            raise _Reject(
                422, f"Maximum of {MAX_IMPORT} contacts per import exceeded ({len(items)})"
            )
        # Validate everything first: a 422 must leave the account untouched, as a real one would.
        accepted: list[tuple[str, dict[str, Any], dict[int, str | None], dict[int, str]]] = []
        for item in items:
            if not isinstance(item, dict):
                raise _Reject(422, "Each contact must be an object")
            email = str(item.get("emailaddress") or "").strip()
            if not valid_email(email):
                if skip_invalid:
                    continue
                raise _Reject(422, f"Emailaddress '{email}' is not valid")
            fields = self._check_customfields(item.get("customfields", []))
            lists = self._check_lists(item.get("contactlists", []))
            accepted.append((email.lower(), item, fields, lists))
        contacts_map = []
        for email, item, fields, lists in accepted:
            contact = self.contacts.get(email)
            is_new = contact is None
            if contact is None:
                contact = FakeContact(next(self._ids), email)
                self.contacts[email] = contact
            if update or is_new:
                for key in ("name", "surname"):
                    if key in item:
                        setattr(contact, key, item[key])
                contact.customfields.update(fields)
            for list_id, status in lists.items():
                if preserve_unsubscribed and contact.contactlists.get(list_id) == "unsubscribed":
                    continue
                contact.contactlists[list_id] = status
            contacts_map.append({"emailaddress": email, "contact_id": contact.id})
        return _json_response(
            _body("created", contacts_map=contacts_map, double_opt_in_map=[]), 201
        )

    def trigger_event(self, body: Any) -> Response:
        # The PHP client sends an array; a single object is accepted too (UNCONFIRMED).
        events = [body] if isinstance(body, dict) else body
        if not isinstance(events, list) or not events:
            raise _Reject(422, "Request body must be an array of events")
        if len(events) > MAX_EVENTS:
            raise _Reject(422, f"Maximum of {MAX_EVENTS} events per request exceeded")
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
                # SmartEmailing creates the contact an event names.
                self.contacts[email] = FakeContact(next(self._ids), email)
            self.events.append(
                {"emailaddress": email, "name": event["name"], "payload": event.get("payload", {})}
            )
        return _json_response(_body("created"), 201)


def create_app(state: FakeSmartEmailing | None = None) -> Flask:
    """The fake's Flask app; the state is ``app.extensions["smartemailing"]``."""
    fake = state or FakeSmartEmailing()
    app = Flask(__name__)
    app.extensions["smartemailing"] = fake

    def error(status: int, message: str) -> Response:
        return _json_response(_body("error", message=message), status)

    @app.errorhandler(_Reject)
    def _rejected(exc: _Reject) -> Response:
        return error(exc.status, exc.message)

    @app.errorhandler(404)
    def _not_found(exc: Exception) -> Response:
        return error(404, "Not found")

    @app.errorhandler(405)
    def _not_allowed(exc: Exception) -> Response:
        return error(405, "Method not allowed")

    @app.before_request
    def _auth() -> Response | None:
        if request.path.rstrip("/").endswith("/ping") or request.path == "/ping":
            return None
        if not fake.authorized():
            return error(401, "Unauthorized: invalid username or API key")
        return None

    def body() -> Any:
        try:
            return json.loads(request.get_data() or b"null")
        except ValueError as exc:
            raise _Reject(400, "Request body is not valid JSON") from exc

    # Served at the root and under /api/v3, so api_url may be either form.
    for prefix in ("", "/api/v3"):

        def route(path: str, methods: list[str], prefix: str = prefix) -> Any:
            return app.route(prefix + path, methods=methods, endpoint=f"{prefix}{path}{methods}")

        @route("/ping", ["GET"])
        def ping() -> Response:
            return _json_response(_body("ok", message="Hi there! API version 3 here!"))

        @route("/check-credentials", ["GET"])
        def check_credentials() -> Response:
            return _json_response(
                _body("ok", message="Hi there! Your credentials are valid!", account_id=2)
            )

        @route("/customfields", ["GET"])
        def customfields() -> Response:
            return fake.list_customfields()

        @route("/customfields", ["POST"])
        def create_customfield() -> Response:
            payload = body()
            with fake.lock:
                return fake.create_customfield(payload)

        @route("/customfields/<int:field_id>", ["GET"])
        def customfield(field_id: int) -> Response:
            with fake.lock:
                found = fake.customfields.get(field_id)
            if found is None:
                raise _Reject(404, f"Customfield {field_id} not found")
            return _json_response(_body("ok", data=dict(found)))

        @route("/customfields/<int:field_id>", ["DELETE"])
        def delete_customfield(field_id: int) -> Response:
            with fake.lock:
                if fake.customfields.pop(field_id, None) is None:
                    raise _Reject(404, f"Customfield {field_id} not found")
                for contact in fake.contacts.values():
                    contact.customfields.pop(field_id, None)
            return Response(status=204)

        @route("/contactlists", ["GET"])
        def contactlists() -> Response:
            return fake.list_contactlists()

        @route("/import", ["POST"])
        def import_contacts() -> Response:
            payload = body()
            with fake.lock:
                return fake.import_contacts(payload)

        @route("/trigger-event", ["POST"])
        def trigger_event() -> Response:
            payload = body()
            with fake.lock:
                return fake.trigger_event(payload)

    return app
