"""A fake Splio API for tests and benchmarks, following Splio's published reference.

What it copies from Splio (https://api.splio.com/doc.json, dev-scp.splio.com):

- ``POST /authenticate {"api_key"}`` → ``{"token": <JWT>}``; a wrong key is a **400**
  ``authentication.failed``, a missing one a 400 ``is_blank``. Other routes need
  ``Authorization: Bearer <token>`` and answer 401 with the bare JSON string
  ``"Authentication failed."`` otherwise. Tokens expire after ``token_lifetime`` seconds,
  one hour as Splio's authentication reference says (``exp`` claim set accordingly); set it
  short to test renewal.
- errors as ``{"status": N, "errors": [{"error_key", "error", "error_description"}]}``.
- ``GET /data/fields/contacts`` paged (``page_number``, ``per_page``; ``count_element``,
  ``current_page``, ``per_page``, ``elements``); ``POST /data/fields`` with scope/name/type.
- ``POST /data/contacts/bulk``: 1..1000 contacts, 207 with one item per contact; an existing
  contact is **not** updated but reported "Contact with unique key … already exists". A new
  contact joins the ``lists`` (``[{"id": N}]``) sent with it; an unknown list fails its item.
- ``PATCH /data/contacts/{key}``: merges custom fields; ``lists`` **replaces** memberships
  (as Splio documents), which is why the plugin must never send it; 404 for unknown contacts.
  Deleting a contact in Splio's UI is ``del fake.contacts[email]``.
- custom field values checked against the field type (``wrong_type``): every value a JSON
  string, a ``date`` one ``YYYY-MM-DD HH:MM:SS`` ("a date at format YYYY-MM-DD HH:MM:SS" in
  the contact routes' reference) of a real day; ``2027-01-31`` alone is refused.
- 429 ``{"message": "API rate limit exceeded"}`` with ``RateLimit-Limit``,
  ``RateLimit-Remaining``, ``RateLimit-Reset`` (``throttled``, for ``FakeServer.fail_next``).

Assumed where Splio publishes nothing: an empty string clears a custom field of any type;
creating a field whose name exists is a 400 ``already_exists``; the unique key (the e-mail) is
compared exactly, ``Jan@example.com`` and ``jan@example.com`` being two contacts. Splio's API
reference says nothing of case, and its Datahub guide wants e-mails "in lowercase"
(dev-scp.splio.com/docs/datahub-contacts), which pointbridge's addresses always are; so the
fake folds nothing that Splio does not say it folds.

Usage::

    fake = FakeSplio(api_keys={"key-1"})
    with serve(fake) as server:           # a pointbridge.testing.FakeServer
        server.fail_next(1, "429", retry_after=2)  # Splio's own 429, RateLimit-Reset: 2
        ...  # settings {"api_key": "key-1", "api_url": server.url}
    fake.values("jan@example.com")        # {"ellity_points_balance": "120", ...}
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Flask, Response

from pointbridge.testing import FakeServer, fakes
from pointbridge.testing.server import Throttled

BULK_MAX = 1000
FIELD_TYPES = ("date", "text", "int", "double")
SYSTEM_FIELDS = ("ext_id", "email", "firstname", "lastname")


def _string(pattern: str) -> Callable[[Any], bool]:
    # Assumed: an empty value clears a field of any type.
    return lambda value: (
        isinstance(value, str) and (value == "" or bool(re.fullmatch(pattern, value)))
    )


def _date(value: Any) -> bool:
    """A date field's value: "YYYY-MM-DD HH:MM:SS", the one format Splio documents for it, of a
    day and time that exist (not 2027-02-30), or "" as for any field."""
    if value == "":
        return True
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", value):
        return False
    try:
        datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return False
    return True


_VALUE_CHECKS = {
    "text": _string(".*"),
    "int": _string(r"-?\d+"),
    "double": _string(r"-?\d+(\.\d+)?"),
    "date": _date,
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


errors = fakes.JsonErrors(
    lambda status, key, error, description: {
        "status": status,
        "errors": [{"error_key": key, "error": error, "error_description": description}],
    }
)


def _field_error(exc: fakes.FieldError) -> tuple[str, str, str]:
    return (
        "custom_fields",
        "wrong_value" if isinstance(exc, fakes.UnknownField) else "wrong_type",
        str(exc),
    )


@dataclass
class FakeSplio:
    """The universe's state, shared by the request threads; read it in assertions."""

    api_keys: set[str] = field(default_factory=lambda: {"test-api-key"})
    token_lifetime: float = 3600.0
    unique_key: str = "email"
    # Make every bearer check fail, as for an API user whose rights were withdrawn.
    reject_tokens: bool = False
    # Benchmarks: a bulk create answers 201 for each address it names, storing nothing.
    bench: bool = False
    # Custom fields by id; system fields (id 0 in Splio's listing) only show in the listing.
    fields: fakes.FieldStore = field(
        default_factory=lambda: fakes.FieldStore(_VALUE_CHECKS, type_key="data_type")
    )
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    lists: dict[int, str] = field(default_factory=dict)
    # Interaction channels set up under Data > Interactions, and the interactions received.
    channels: set[str] = field(default_factory=lambda: {"loyalty"})
    events: list[dict[str, Any]] = field(default_factory=list)
    tokens: dict[str, float] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1), repr=False)

    def __post_init__(self) -> None:
        if not self.fields:
            self.add_field("civility", "text")  # a stock custom field of a fresh universe

    # -- set-up and assertions ---------------------------------------------------------------

    def add_field(self, name: str, data_type: str = "text") -> dict[str, Any]:
        with self.lock:
            return self.fields.add(name, data_type)

    def add_list(self, name: str) -> int:
        with self.lock:
            list_id = max([*self.lists, 0]) + 1
            self.lists[list_id] = name
            return list_id

    def add_contact(
        self, email: str, values: dict[str, str] | None = None, lists: Iterable[int] = ()
    ) -> dict[str, Any]:
        """A contact that exists before the test, custom values given by field name."""
        with self.lock:
            contact = self.new_contact({"email": email})
            for name, value in (values or {}).items():
                contact["custom_fields"][self.field_by_name(name)["id"]] = value
            contact["lists"] = list(lists)
            return contact

    def field_by_name(self, name: str) -> dict[str, Any]:
        with self.lock:
            return self.fields.named(name)  # type: ignore[return-value]

    def values(self, email: str) -> dict[str, str]:
        """A contact's custom field values by field name."""
        with self.lock:
            return self.fields.by_name(self.contacts[email]["custom_fields"])

    def revoke_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def custom_field_names(self) -> list[str]:
        with self.lock:
            return [f["name"] for f in self.fields.values()]

    # -- what the routes do ------------------------------------------------------------------

    def new_contact(self, body: dict[str, Any]) -> dict[str, Any]:
        contact = {
            "id": next(self._ids),
            "email": body["email"],
            "firstname": body.get("firstname", ""),
            "lastname": body.get("lastname", ""),
            "custom_fields": {},
            "lists": [e["id"] for e in body.get("lists", [])],
        }
        self.contacts[body["email"]] = contact
        return contact

    def issue_token(self) -> str:
        expires = time.time() + self.token_lifetime
        claims = {"exp": expires, "iat": time.time(), "jti": secrets.token_hex(8)}
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        token = f"{header}.{_b64(json.dumps(claims).encode())}.{_b64(secrets.token_bytes(32))}"
        with self.lock:
            self.tokens[token] = expires
        return token

    def token_valid(self, token: str) -> bool:
        with self.lock:
            expires = self.tokens.get(token)
            return not self.reject_tokens and expires is not None and time.time() < expires

    def resolve_custom_fields(self, entries: Any) -> dict[int, str]:
        """Checked ``custom_fields`` of a payload as {field id: value}, or ``FieldError``."""
        if not isinstance(entries, list):
            raise fakes.FieldError("custom_fields must be an array.")
        resolved: dict[int, str] = {}
        for entry in entries:
            entry = entry if isinstance(entry, dict) else {}
            named = self.fields.named(str(entry.get("name")))
            ref = entry.get("id", named["id"] if named else entry.get("name"))
            resolved[self.fields.check(ref, entry.get("value"))["id"]] = entry.get("value")
        return resolved


def error_body(status: int) -> bytes:
    """Splio-shaped body for the 500/503 that ``FakeServer`` injects."""
    return errors.body(status, "server", "internal_error", "An internal error occurred.")


def throttled(wait: float) -> Throttled:
    """Splio's 429: its reset in whole seconds in ``RateLimit-Reset``, no ``Retry-After``."""
    headers = {
        "RateLimit-Limit": "20",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": str(fakes.whole_seconds(wait)),
    }
    return fakes.too_many_requests({"message": "API rate limit exceeded"}, headers)


def create_app(state: FakeSplio) -> Flask:
    app = Flask("fake_splio")

    def body_json() -> dict[str, Any]:
        return fakes.json_body(errors.reject(400, "payload", "invalid_json"))  # type: ignore[no-any-return]

    fakes.require_auth(
        app,
        lambda: state.token_valid(fakes.bearer_token()),
        lambda: fakes.json_response("Authentication failed.", 401),
        open_paths=("/authenticate",),
    )

    @app.post("/authenticate")
    def authenticate() -> Response:
        key = body_json().get("api_key")
        if not key:
            errors.fail(400, "api_key", "is_blank", "Api key is missing.")
        with state.lock:
            if key not in state.api_keys:
                errors.fail(400, "username", "authentication.failed", "User authentication failed.")
        return fakes.json_response({"token": state.issue_token()})

    @app.get("/universes/unique-key")
    def unique_key() -> Response:
        return fakes.json_response({"unique_key": state.unique_key})

    @app.get("/data/fields/contacts")
    def list_fields() -> Response:
        with state.lock:
            elements = [{"id": 0, "is_system": True, "name": name} for name in SYSTEM_FIELDS]
            elements += [
                {"id": f["id"], "is_system": False, "name": f["name"]}
                for f in sorted(state.fields.values(), key=lambda f: f["id"])
            ]
        shown, page, per_page = fakes.numbered_page(
            elements, errors.reject(400, "per_page", "wrong_value"), page="page_number"
        )
        return fakes.json_response(
            {
                "count_element": len(elements),
                "current_page": page,
                "per_page": per_page,
                "elements": shown,
            }
        )

    @app.post("/data/fields")
    def create_field() -> Response:
        body = body_json()
        if body.get("scope") != "contacts" or body.get("type") not in FIELD_TYPES:
            errors.fail(400, "type", "wrong_value", f"A contacts field of type {FIELD_TYPES}.")
        if not body.get("name"):
            errors.fail(400, "name", "is_blank", "name is missing.")
        with state.lock:
            taken = [*SYSTEM_FIELDS, *state.custom_field_names()]
            if str(body["name"]).lower() in (name.lower() for name in taken):
                errors.fail(400, "name", "already_exists", "This field already exists.")
            return fakes.json_response(state.add_field(str(body["name"]), body["type"]), 201)

    @app.post("/data/contacts/bulk")
    def bulk_create() -> Response:
        if state.bench:
            items = [
                {"contact_id": e, "code": 201, "description": ""} for e in fakes.bench_emails()
            ]
            return fakes.json_response({"time": 1, "errors": 0, "items": items}, 207)
        contacts = body_json().get("contacts")
        if not isinstance(contacts, list) or not 1 <= len(contacts) <= BULK_MAX:
            many = f"The number of contacts must be between 1 and {BULK_MAX}."
            errors.fail(400, "contacts", "too_many_elements", many)
        with state.lock:
            items = [_bulk_item(state, raw) for raw in contacts]
        failed = sum(1 for i in items if i["code"] >= 300)
        return fakes.json_response({"time": 1, "errors": failed, "items": items}, 207)

    @app.patch("/data/contacts/<path:key>")
    def patch_contact(key: str) -> Response:
        body = body_json()
        with state.lock:
            contact = state.contacts.get(key)
            if contact is None:
                errors.fail(404, "id", "wrong_value", "Contact not found for given identifier.")
            try:
                contact["custom_fields"].update(
                    state.resolve_custom_fields(body.get("custom_fields", []))
                )
            except fakes.FieldError as exc:
                errors.fail(400, *_field_error(exc))
            if "lists" in body:
                # Splio: memberships are replaced, not merged.
                contact["lists"] = [e["id"] for e in body["lists"]]
            return fakes.json_response({"id": contact["id"], "email": contact["email"]})

    @app.post("/events/")
    def create_event() -> Response:
        body = body_json()
        for name in ("event", "channel", "individual_id", "value_date"):
            if not isinstance(body.get(name), str) or not body[name]:
                errors.fail(400, name, "is_blank", f"{name} is required.")
        with state.lock:
            if body["channel"] not in state.channels:
                errors.fail(400, "channel", "wrong_value", "Unknown channel.")
            if body["individual_id"] not in state.contacts:
                # UNCONFIRMED: the docs do not say what an unknown contact gets.
                errors.fail(404, "individual_id", "wrong_value", "Contact not found.")
            state.events.append(dict(body))
        return fakes.json_response({"id": len(state.events)}, 201)

    return app


def _bulk_item(state: FakeSplio, raw: Any) -> dict[str, Any]:
    email = raw.get("email") if isinstance(raw, dict) else None
    if not isinstance(email, str) or "@" not in email:
        return {"contact_id": email or "", "code": 400, "description": f"Invalid email {email}."}
    if email in state.contacts:
        description = f"Contact with unique key {email} already exists"
        return {"contact_id": email, "code": 400, "description": description}
    try:
        values = state.resolve_custom_fields(raw.get("custom_fields", []))
    except fakes.FieldError as exc:
        return {"contact_id": email, "code": 400, "description": str(exc)}
    lists = raw.get("lists", [])
    if not isinstance(lists, list) or any(
        not isinstance(e, dict) or e.get("id") not in state.lists for e in lists
    ):
        return {"contact_id": email, "code": 400, "description": f"Unknown list in {lists}."}
    state.new_contact(raw)["custom_fields"].update(values)
    return {"contact_id": email, "code": 201, "description": ""}


def serve(state: FakeSplio) -> FakeServer:
    """A ``FakeServer`` around a fake universe, answering faults the way Splio does."""
    return FakeServer(create_app(state), error_body=error_body, throttled=throttled)
