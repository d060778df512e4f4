"""A fake Splio API for tests and benchmarks, following Splio's published reference.

What it copies from Splio (https://api.splio.com/doc.json, dev-scp.splio.com):

- ``POST /authenticate {"api_key"}`` → ``{"token": <JWT>}``; a wrong key is a **400**
  ``authentication.failed``, a missing one a 400 ``is_blank``. Other routes need
  ``Authorization: Bearer <token>`` and answer 401 with the bare JSON string
  ``"Authentication failed."`` otherwise. Tokens expire after ``token_lifetime`` seconds
  (``exp`` claim set accordingly); set it short to test renewal.
- errors as ``{"status": N, "errors": [{"error_key", "error", "error_description"}]}``.
- ``GET /data/fields/contacts`` paged (``page_number``, ``per_page``; ``count_element``,
  ``current_page``, ``per_page``, ``elements``); ``POST /data/fields`` with scope/name/type.
- ``POST /data/contacts/bulk``: 1..1000 contacts, 207 with one item per contact; an existing
  contact is **not** updated but reported "Contact with unique key … already exists".
- ``PATCH /data/contacts/{key}``: merges custom fields; ``lists`` **replaces** memberships
  (as Splio documents), which is why the plugin must never send it; 404 for unknown contacts.
- custom field values checked against the field type (``wrong_type``).
- 429 ``{"message": "API rate limit exceeded"}`` with ``RateLimit-Limit``,
  ``RateLimit-Remaining``, ``RateLimit-Reset``; 20/s on ``data/contacts``, 10/s elsewhere.

Assumed where Splio publishes nothing: an empty string clears a custom field of any type;
creating a field whose name exists is a 400 ``already_exists``.

Usage::

    fake = FakeSplio(api_keys={"key-1"})
    with serve(fake) as server:           # a pointbridge.testing.FakeServer
        ...  # settings {"api_key": "key-1", "api_url": server.url}
    fake.values("jan@example.com")        # {"ellity_points_balance": "120", ...}
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, request

from pointbridge.testing import FakeServer, Faults, RateLimitRule
from pointbridge.testing.server import Throttled

BULK_MAX = 1000
FIELD_TYPES = ("date", "text", "int", "double")
SCOPES = ("contacts", "stores", "products", "order_products", "orders", "rewards", "loyalty")
_INT = re.compile(r"^-?\d+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class FakeSplio:
    """The universe's state, shared by the request threads; read it in assertions."""

    api_keys: set[str] = field(default_factory=lambda: {"test-api-key"})
    token_lifetime: float = 24 * 3600.0
    unique_key: str = "email"
    # Make every bearer check fail, as for an API user whose rights were withdrawn.
    reject_tokens: bool = False
    # Custom fields by id; system fields (id 0 in Splio's listing) only show in the listing.
    fields: dict[int, dict[str, Any]] = field(default_factory=dict)
    system_fields: tuple[str, ...] = ("ext_id", "email", "firstname", "lastname")
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    lists: dict[int, str] = field(default_factory=dict)
    tokens: dict[str, float] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1), repr=False)

    def __post_init__(self) -> None:
        if not self.fields:
            self.add_field("civility", "text")  # a stock custom field of a fresh universe

    # -- set-up and assertions ---------------------------------------------------------------

    def reset(self, api_keys: set[str] | None = None) -> None:
        """Back to a fresh universe, so one server can serve many tests."""
        fresh = FakeSplio(api_keys=set(api_keys or self.api_keys))
        with self.lock:
            for name in ("api_keys", "token_lifetime", "unique_key", "reject_tokens"):
                setattr(self, name, getattr(fresh, name))
            for name in ("fields", "contacts", "lists", "tokens"):
                getattr(self, name).clear()
            self.add_field("civility", "text")

    def add_field(self, name: str, data_type: str = "text") -> dict[str, Any]:
        with self.lock:
            field_id = max([f["id"] for f in self.fields.values()] + [0]) + 1
            element = {"id": field_id, "name": name, "data_type": data_type}
            self.fields[field_id] = element
            return element

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
            contact = self._new_contact({"email": email})
            for name, value in (values or {}).items():
                contact["custom_fields"][self.field_by_name(name)["id"]] = value
            contact["lists"] = list(lists)
            return contact

    def field_by_name(self, name: str) -> dict[str, Any]:
        with self.lock:
            return next(f for f in self.fields.values() if f["name"].lower() == name.lower())

    def values(self, email: str) -> dict[str, str]:
        """A contact's custom field values by field name."""
        with self.lock:
            contact = self.contacts[email.lower()]
            return {self.fields[fid]["name"]: v for fid, v in contact["custom_fields"].items()}

    def revoke_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def custom_field_names(self) -> list[str]:
        with self.lock:
            return [f["name"] for f in self.fields.values()]

    # -- internals ---------------------------------------------------------------------------

    def _new_contact(self, body: dict[str, Any]) -> dict[str, Any]:
        contact = {
            "id": next(self._ids),
            "email": body["email"],
            "firstname": body.get("firstname", ""),
            "lastname": body.get("lastname", ""),
            "custom_fields": {},
            "lists": [],
            "creation_date": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        self.contacts[body["email"].lower()] = contact
        return contact

    def issue_token(self) -> str:
        expires = time.time() + self.token_lifetime
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = _b64(
            json.dumps({"exp": expires, "iat": time.time(), "jti": secrets.token_hex(8)}).encode()
        )
        token = f"{header}.{payload}.{_b64(secrets.token_bytes(32))}"
        with self.lock:
            self.tokens[token] = expires
        return token

    def token_valid(self, token: str) -> bool:
        with self.lock:
            expires = self.tokens.get(token)
            return not self.reject_tokens and expires is not None and time.time() < expires

    def resolve_custom_fields(self, entries: Any) -> dict[int, str]:
        """Checked ``custom_fields`` of a payload as {field id: value}, or ``_Invalid``."""
        if not isinstance(entries, list):
            raise _Invalid("custom_fields", "wrong_type", "custom_fields must be an array.")
        resolved: dict[int, str] = {}
        for entry in entries:
            if not isinstance(entry, dict) or "value" not in entry:
                raise _Invalid(
                    "custom_fields",
                    "wrong_value",
                    "Each custom field needs an id or a name and a value.",
                )
            spec = None
            if "id" in entry:
                spec = self.fields.get(entry["id"]) if isinstance(entry["id"], int) else None
            elif isinstance(entry.get("name"), str):
                spec = next((f for f in self.fields.values() if f["name"] == entry["name"]), None)
            if spec is None:
                raise _Invalid(
                    "custom_fields",
                    "wrong_value",
                    f"Custom field {entry.get('id', entry.get('name'))!r} does not exist.",
                )
            resolved[spec["id"]] = _check_value(spec, entry["value"])
        return resolved

    def resolve_lists(self, entries: Any) -> list[int]:
        if not isinstance(entries, list) or not all(
            isinstance(e, dict) and e.get("id") in self.lists for e in entries
        ):
            raise _Invalid("lists", "wrong_value", "Unknown list.")
        return [e["id"] for e in entries]


class _Invalid(Exception):
    def __init__(self, key: str, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.key, self.error, self.description, self.status = key, error, description, status


def _check_value(spec: dict[str, Any], value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _Invalid(
            "custom_fields", "wrong_type", f"Custom field {spec['name']} got a {type(value)}."
        )
    text = str(value)
    if text == "":
        return ""  # assumed: an empty value clears the field
    kind = spec["data_type"]
    ok = (
        kind == "text"
        or (kind == "int" and _INT.match(text) is not None)
        or (kind == "double" and _is_float(text))
        or (kind == "date" and _DATE.match(text) is not None)
    )
    if not ok:
        raise _Invalid(
            "custom_fields",
            "wrong_type",
            f"Custom field {spec['name']} expects a value of type {kind}, got {text!r}.",
        )
    return text


def _is_float(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _error(status: int, key: str, error: str, description: str) -> Response:
    body = {
        "status": status,
        "errors": [{"error_key": key, "error": error, "error_description": description}],
    }
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def error_body(status: int) -> bytes:
    """Splio-shaped body for the 500/503 that ``Faults`` injects."""
    return json.dumps(
        {
            "status": status,
            "errors": [
                {
                    "error_key": "server",
                    "error": "internal_error",
                    "error_description": "An internal error occurred.",
                }
            ],
        }
    ).encode()


def create_app(state: FakeSplio) -> Flask:
    app = Flask("fake_splio")

    def body_json() -> Any:
        try:
            return json.loads(request.get_data() or b"")
        except ValueError as exc:
            raise _Invalid("payload", "invalid_json", "The body is not valid JSON.") from exc

    @app.errorhandler(_Invalid)
    def invalid(exc: _Invalid) -> Response:
        return _error(exc.status, exc.key, exc.error, exc.description)

    @app.before_request
    def check_bearer() -> Response | None:
        if request.path == "/authenticate":
            return None
        header = request.headers.get("Authorization", "")
        token = header[len("Bearer ") :] if header.startswith("Bearer ") else ""
        if not state.token_valid(token):
            return _json("Authentication failed.", 401)
        return None

    @app.post("/authenticate")
    def authenticate() -> Response:
        body = body_json()
        key = body.get("api_key") if isinstance(body, dict) else None
        if not key:
            return _error(400, "api_key", "is_blank", "Api key is missing.")
        with state.lock:
            known = key in state.api_keys
        if not known:
            return _error(400, "username", "authentication.failed", "User authentication failed.")
        return _json({"token": state.issue_token()})

    @app.get("/universes/unique-key")
    def unique_key() -> Response:
        return _json({"unique_key": state.unique_key})

    @app.get("/data/fields/contacts")
    def list_fields() -> Response:
        try:
            page = int(request.args.get("page_number", 1))
            per_page = int(request.args.get("per_page", 50))
        except ValueError:
            return _error(400, "page_number", "wrong_type", "Paging parameters must be numbers.")
        if page < 1 or not 1 <= per_page <= 1000:
            return _error(400, "per_page", "wrong_value", "per_page must be 1..1000.")
        with state.lock:
            every = [(None, name) for name in state.system_fields] + [
                (f["id"], f["name"]) for f in sorted(state.fields.values(), key=lambda f: f["id"])
            ]
            elements = [
                {
                    "intid": field_id,
                    "id": field_id or 0,
                    "is_system": field_id is None,
                    "filling": 0,
                    "unique_values": 0,
                    "name": name,
                    "translation_key": name,
                    "label": name,
                    "field_key": name,
                }
                for field_id, name in every
            ]
        start = (page - 1) * per_page
        return _json(
            {
                "count_element": len(elements),
                "current_page": page,
                "per_page": per_page,
                "sort": {"id": "ASC"},
                "elements": elements[start : start + per_page],
            }
        )

    @app.post("/data/fields")
    def create_field() -> Response:
        body = body_json()
        if not isinstance(body, dict):
            raise _Invalid("payload", "wrong_type", "Expected an object.")
        for key in ("scope", "name", "type"):
            if not body.get(key):
                return _error(400, key, "is_blank", f"{key} is missing.")
        if body["scope"] not in SCOPES:
            return _error(400, "scope", "wrong_value", f"Unknown scope {body['scope']!r}.")
        if body["type"] not in FIELD_TYPES:
            return _error(400, "type", "wrong_value", f"Unknown type {body['type']!r}.")
        if body["scope"] != "contacts":
            return _error(400, "scope", "not_supported", "The fake only keeps contact fields.")
        with state.lock:
            taken = [*state.system_fields, *(f["name"] for f in state.fields.values())]
            if str(body["name"]).lower() in (name.lower() for name in taken):
                return _error(400, "name", "already_exists", "This field already exists.")
            element = state.add_field(str(body["name"]), body["type"])
        return _json(
            {"id": element["id"], "name": element["name"], "data_type": element["data_type"]},
            201,
        )

    @app.post("/data/contacts/bulk")
    def bulk_create() -> Response:
        started = time.monotonic()
        body = body_json()
        contacts = body.get("contacts") if isinstance(body, dict) else None
        if not isinstance(contacts, list) or not contacts:
            return _error(400, "contacts", "is_blank", "contacts must be a non-empty array.")
        if len(contacts) > BULK_MAX:
            return _error(
                400,
                "contacts",
                "too_many_elements",
                f"The number of contacts must be between 1 and {BULK_MAX}.",
            )
        items = []
        with state.lock:
            for raw in contacts:
                items.append(_bulk_item(state, raw))
        errors = sum(1 for i in items if i["code"] >= 300)
        took = round((time.monotonic() - started) * 1000)
        return _json({"time": took, "errors": errors, "items": items}, 207)

    @app.get("/data/contacts/<path:key>")
    def get_contact(key: str) -> Response:
        with state.lock:
            contact = state.contacts.get(key.lower())
            if contact is None:
                return _not_found()
            return _json(_render(state, contact))

    @app.patch("/data/contacts/<path:key>")
    def patch_contact(key: str) -> Response:
        body = body_json()
        if not isinstance(body, dict):
            raise _Invalid("payload", "wrong_type", "Expected an object.")
        with state.lock:
            contact = state.contacts.get(key.lower())
            if contact is None:
                return _not_found()
            if "email" in body and str(body["email"]).lower() != key.lower():
                return _error(400, "email", "wrong_value", "The unique key can't be modified.")
            values = state.resolve_custom_fields(body.get("custom_fields", []))
            lists = state.resolve_lists(body["lists"]) if "lists" in body else None
            contact["custom_fields"].update(values)
            if lists is not None:
                contact["lists"] = lists  # Splio: memberships are replaced, not merged
            for name in ("firstname", "lastname"):
                if name in body:
                    contact[name] = body[name]
            return _json(_render(state, contact))

    @app.post("/data/contacts/<path:key>/lists/subscribe")
    def subscribe(key: str) -> Response:
        body = body_json()
        ids = body.get("list_ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not ids:
            return _error(400, "list_ids", "is_blank", "list_ids is missing.")
        with state.lock:
            contact = state.contacts.get(key.lower())
            if contact is None:
                return _not_found()
            if any(i not in state.lists for i in ids):
                return _error(400, "list_ids", "wrong_value", "Unknown list.")
            contact["lists"] = sorted(set(contact["lists"]) | set(ids))
            return _json(_render(state, contact))

    return app


def _bulk_item(state: FakeSplio, raw: Any) -> dict[str, Any]:
    email = raw.get("email") if isinstance(raw, dict) else None
    if not isinstance(email, str) or not email.strip():
        return {"contact_id": "", "code": 400, "description": "Missing unique key email."}
    if not _EMAIL.match(email):
        return {"contact_id": email, "code": 400, "description": f"Invalid email {email}."}
    if email.lower() in state.contacts:
        return {
            "contact_id": email,
            "code": 400,
            "description": f"Contact with unique key {email} already exists",
        }
    try:
        values = state.resolve_custom_fields(raw.get("custom_fields", []))
        lists = state.resolve_lists(raw["lists"]) if "lists" in raw else []
    except _Invalid as exc:
        return {"contact_id": email, "code": 400, "description": exc.description}
    contact = state._new_contact(raw)
    contact["custom_fields"].update(values)
    contact["lists"] = lists
    return {"contact_id": email, "code": 201, "description": ""}


def _render(state: FakeSplio, contact: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": contact["id"],
        "email": contact["email"],
        "firstname": contact["firstname"],
        "lastname": contact["lastname"],
        "creation_date": contact["creation_date"],
        "custom_fields": [
            {
                "id": fid,
                "name": state.fields[fid]["name"],
                "value": value,
                "data_type": state.fields[fid]["data_type"],
            }
            for fid, value in contact["custom_fields"].items()
        ],
        "lists": [{"id": i, "name": state.lists[i]} for i in contact["lists"]],
    }


def _not_found() -> Response:
    return _error(404, "id", "wrong_value", "Contact not found for given identifier.")


def rate_limit_rules(
    contacts_per_second: int = 20, others_per_second: int = 10
) -> list[RateLimitRule]:
    """Splio's per-IP limits, one rule per path family, answering 429 with RateLimit-*."""

    def responder(limit: int) -> Callable[[float], Throttled]:
        def respond(wait: float) -> Throttled:
            headers = {
                "RateLimit-Limit": str(limit),
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(max(1, math.ceil(wait))),
            }
            return 429, headers, b'{"message":"API rate limit exceeded"}'

        return respond

    def is_contacts(path: str) -> bool:
        return path == "/data/contacts" or path.startswith("/data/contacts/")

    return [
        RateLimitRule(
            contacts_per_second, 1.0, respond=responder(contacts_per_second), applies=is_contacts
        ),
        RateLimitRule(
            others_per_second,
            1.0,
            respond=responder(others_per_second),
            applies=lambda path: not is_contacts(path),
        ),
    ]


def serve(
    state: FakeSplio | None = None,
    *,
    faults: Faults | None = None,
    rate_limits: bool | Iterable[RateLimitRule] = True,
) -> FakeServer:
    """A ``FakeServer`` around a fake universe, with Splio's rate limits unless told not to."""
    state = state if state is not None else FakeSplio()
    rules: Iterable[RateLimitRule]
    if rate_limits is True:
        rules = rate_limit_rules()
    elif rate_limits is False:
        rules = ()
    else:
        rules = rate_limits
    server = FakeServer(create_app(state), faults=faults, rate_limits=rules, error_body=error_body)
    server.state = state  # type: ignore[attr-defined]
    return server
