"""A fake Dotdigital API, for tests and benchmarks (wrap it in ``core.testing.FakeServer``).

It follows the documented API where a document exists (see the plugin README for what is
confirmed): HTTP Basic with an API user, ``/v2/account-info`` naming the regional
``ApiEndpoint``, v2 data fields and address books with ``{"message": "... ERROR_CODE"}``
errors, v3 contacts (``PATCH /contacts/v3/email/{email}``, asynchronous
``PUT /contacts/v3/import``) with ``{"errorCode", "description", "details"}`` errors, lower-case
request enums, the 25-running-imports limit, and 429s with ``x-ratelimit-*`` headers.

Typical use::

    state = DotdigitalState(address_books={7: "Customers"})
    with FakeServer(create_app(state), rate_limits=[import_rate_limit()]) as server:
        ...  # settings {"api_url": server.url, "username": state.username, ...}
        state.contacts["jan@example.com"].data_fields["ELLITY_POINTS"]

``account-info`` advertises ``state.api_endpoint``, or the fake's own URL when that is None.
For a "different region" set-up serve the same state twice: ``create_app(state, home=False)``
as r1 (answers only ``account-info``; everything else gets 403 like a wrong region) and
``create_app(state)`` as the account's region, with ``state.api_endpoint`` set to its URL.
"""

from __future__ import annotations

import base64
import hmac
import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, request

from pointbridge.testing import RateLimitRule

DATA_FIELD_NAME = re.compile(r"^[A-Za-z0-9_-]{1,20}$")
DATA_FIELD_TYPES = ("String", "Numeric", "Date", "Boolean")
DEFAULT_DATA_FIELDS = ("FIRSTNAME", "LASTNAME", "FULLNAME", "GENDER", "POSTCODE")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

EMAIL_TYPES = ("html", "plainText")
OPT_IN_TYPES = ("unknown", "single", "double", "verifiedDouble")
CHANNEL_STATUSES = ("subscribed", "unsubscribed", "suppressed")
PATCH_MERGE = {
    "overwrite": "overwrite",
    "overwrite-if-not-empty": "ifNotEmpty",
    "overwrite-if-empty": "ifEmpty",
}
IMPORT_MERGE = {
    "overwrite": "overwrite",
    "overwriteIfNotEmpty": "ifNotEmpty",
    "overwriteIfEmpty": "ifEmpty",
}
MAX_LISTS = 100  # baseContact.lists maxItems in the v3 spec


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class FakeContact:
    contact_id: int
    email: str
    data_fields: dict[str, Any] = field(default_factory=dict)
    lists: set[int] = field(default_factory=set)
    status: str = "subscribed"
    opt_in_type: str = "Unknown"
    email_type: str = "Html"
    created: str = field(default_factory=_now)
    updated: str = field(default_factory=_now)


@dataclass
class ImportJob:
    import_id: str
    rows: list[dict[str, Any]]
    merge: str
    started: float = field(default_factory=time.monotonic)
    polls: int = 0
    status: str = "NotFinished"
    result: dict[str, Any] | None = None


class DotdigitalState:
    """Everything the fake account holds; read it in assertions, under ``lock`` if racing.

    :param finish_after_polls: an import answers ``NotFinished`` to this many status polls
        before it is processed (Dotdigital imports are asynchronous)
    :param finish_after_seconds: an import also finishes once this old, polled or not
    :param max_import_contacts: contacts one import may hold (the real limit is not
        documented; the fake enforces the plugin's batch size by default)
    """

    def __init__(
        self,
        username: str = "apiuser-1a2b3c@apiconnector.com",
        password: str = "Correct-Horse-9",
        *,
        api_endpoint: str | None = None,
        address_books: Mapping[int, str] | None = None,
        data_fields: Iterable[str] = DEFAULT_DATA_FIELDS,
        finish_after_polls: int = 1,
        finish_after_seconds: float | None = 5.0,
        max_import_contacts: int = 1000,
        max_active_imports: int = 25,
    ) -> None:
        self.lock = threading.RLock()
        self.username = username
        self.password = password
        self.api_endpoint = api_endpoint
        self.account_id = 424242
        self.address_books: dict[int, dict[str, Any]] = {}
        for book_id, name in (address_books or {}).items():
            self.address_books[book_id] = {"id": book_id, "name": name, "visibility": "Private"}
        self.data_fields: dict[str, dict[str, Any]] = {
            name: {"name": name, "type": "String", "visibility": "Public", "defaultValue": None}
            for name in data_fields
        }
        self.contacts: dict[str, FakeContact] = {}
        self.imports: dict[str, ImportJob] = {}
        self.suppressed: set[str] = set()  # e-mails suppressed account-wide
        self.optin_emails: list[str] = []  # double opt-in confirmations the fake "sent"
        self.resubscribed: list[str] = []  # unsubscribed contacts written back to subscribed
        self.force_import_status: str | None = None  # e.g. "Failed", "RejectedByWatchdog"
        self.finish_after_polls = finish_after_polls
        self.finish_after_seconds = finish_after_seconds
        self.max_import_contacts = max_import_contacts
        self.max_active_imports = max_active_imports
        self._ids = itertools.count(1000)

    def add_address_book(self, name: str) -> int:
        with self.lock:
            book_id = max([0, *self.address_books]) + 1
            self.address_books[book_id] = {"id": book_id, "name": name, "visibility": "Private"}
            return book_id

    def book_members(self, book_id: int) -> set[str]:
        with self.lock:
            return {email for email, c in self.contacts.items() if book_id in c.lists}

    def active_imports(self) -> int:
        with self.lock:
            for job in self.imports.values():
                self._maybe_finish(job, polled=False)
            return sum(job.status == "NotFinished" for job in self.imports.values())

    # contact writes ---------------------------------------------------------------------------

    def _field(self, name: str) -> dict[str, Any] | None:
        return self.data_fields.get(name.upper())

    def apply(
        self,
        email: str,
        data_fields: Mapping[str, Any],
        lists: Iterable[int],
        channel: Mapping[str, Any],
        merge: str,
    ) -> tuple[FakeContact, bool]:
        key = email.lower()
        contact = self.contacts.get(key)
        created = contact is None
        if contact is None:
            contact = FakeContact(next(self._ids), email)
            self.contacts[key] = contact
            opt_in = channel.get("optInType", "unknown")
            contact.opt_in_type = opt_in[0].upper() + opt_in[1:]
            contact.status = channel.get("status", "subscribed")
            if opt_in in ("double", "verifiedDouble"):
                contact.status = "pendingOptIn"
                self.optin_emails.append(email)
        else:
            status = channel.get("status")
            if status:
                if status == "subscribed" and contact.status == "unsubscribed":
                    self.resubscribed.append(email)
                contact.status = status
            if "optInType" in channel:
                opt_in = channel["optInType"]
                contact.opt_in_type = opt_in[0].upper() + opt_in[1:]
                if opt_in in ("double", "verifiedDouble"):
                    self.optin_emails.append(email)
        if "emailType" in channel:
            contact.email_type = "Html" if channel["emailType"] == "html" else "PlainText"
        for name, value in data_fields.items():
            name = name.upper()
            current = contact.data_fields.get(name)
            empty_new = value is None or value == ""
            if merge == "ifNotEmpty" and empty_new:
                continue
            if merge == "ifEmpty" and current not in (None, ""):
                continue
            contact.data_fields[name] = value
        contact.lists.update(lists)
        contact.updated = _now()
        return contact, created

    # imports ----------------------------------------------------------------------------------

    def _maybe_finish(self, job: ImportJob, *, polled: bool) -> None:
        if job.status != "NotFinished":
            return
        if polled:
            job.polls += 1
        old_enough = (
            self.finish_after_seconds is not None
            and time.monotonic() - job.started >= self.finish_after_seconds
        )
        if job.polls <= self.finish_after_polls and not old_enough:
            return
        if self.force_import_status:
            job.status = self.force_import_status
            return
        self._process(job)

    def _process(self, job: ImportJob) -> None:
        created: list[dict[str, Any]] = []
        updated: list[dict[str, Any]] = []
        failures: list[dict[str, Any]] = []
        summary = dict.fromkeys(
            (
                "newContacts",
                "updatedContacts",
                "globallySuppressed",
                "invalidEntries",
                "duplicateIdentifiers",
            ),
            0,
        )
        seen: set[str] = set()
        for row in job.rows:
            email = str(row["identifiers"].get("email") or "")
            base = {"matchIdentifier": row["matchIdentifier"], "identifiers": row["identifiers"]}
            if not EMAIL.match(email):
                summary["invalidEntries"] += 1
                failures.append(
                    {
                        **base,
                        "failures": [
                            {
                                "failureCode": "invalidEmail",
                                "description": "Invalid value for 'email'",
                            }
                        ],
                    }
                )
                continue
            if email.lower() in seen:
                summary["duplicateIdentifiers"] += 1
                failures.append(
                    {
                        **base,
                        "failures": [
                            {
                                "failureCode": "duplicateIdentifier",
                                "description": f"Duplicate identifier detected for email '{email}'",
                            }
                        ],
                    }
                )
                continue
            seen.add(email.lower())
            if email.lower() in self.suppressed:
                summary["globallySuppressed"] += 1
                continue
            contact, was_created = self.apply(
                email,
                row.get("dataFields") or {},
                row.get("lists") or [],
                (row.get("channelProperties") or {}).get("email") or {},
                job.merge,
            )
            ref = {"contactId": contact.contact_id, "identifiers": {"email": contact.email}}
            (created if was_created else updated).append(ref)
            summary["newContacts" if was_created else "updatedContacts"] += 1
        job.status = "Finished"
        job.result = {
            "summary": summary,
            "created": created,
            "updated": updated,
            "failures": failures,
        }


# --- responses -------------------------------------------------------------------------------


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body), status=status, headers=dict(headers or {}), mimetype="application/json"
    )


def v2_error(status: int, text: str, code: str) -> Response:
    return _json({"message": f"{text} {code}"}, status)


def v3_error(
    status: int, code: str, description: str, details: list[dict[str, str]] | None = None
) -> Response:
    body: dict[str, Any] = {"errorCode": code, "description": description}
    if details:
        body["details"] = details
    return _json(body, status)


def ratelimit_response(calls: int, wait: float) -> tuple[int, dict[str, str], bytes]:
    """A tiered-scheme 429; ``x-ratelimit-reset`` is the epoch second the window reopens."""
    reset = int(time.time() + max(wait, 0.0)) + 1
    headers = {
        "x-ratelimit-limit": str(calls),
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": str(reset),
        "Content-Type": "application/json",
    }
    body = {"errorCode": "rateLimitExceeded", "description": "Too many requests"}
    return 429, headers, json.dumps(body).encode()


def import_rate_limit(calls: int = 35, per_seconds: float = 60.0) -> RateLimitRule:
    """The Basic package's low-tier limit on ``PUT /contacts/v3/import``, Dotdigital-style."""
    return RateLimitRule(
        calls,
        per_seconds,
        respond=lambda wait: ratelimit_response(calls, wait),
        applies=lambda path: path == "/contacts/v3/import",
    )


# --- validation -----------------------------------------------------------------------------


def _value_ok(type_: str, value: Any) -> bool:
    if value is None:
        return True
    if type_ == "Numeric":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if type_ == "Boolean":
        return isinstance(value, bool)
    return isinstance(value, str)


def _check_contact(
    state: DotdigitalState, body: Any, *, where: str = ""
) -> list[dict[str, str]] | Response:
    """Problems in one v3 contact body, as ``details`` entries; a Response for bad JSON."""
    if not isinstance(body, dict):
        return v3_error(400, "contacts:badJson", "The request JSON is badly formed")
    details: list[dict[str, str]] = []
    identifiers = body.get("identifiers", {})
    if not isinstance(identifiers, dict):
        details.append({"item": f"{where}identifiers", "description": "Must be an object"})
    data_fields = body.get("dataFields", {})
    if not isinstance(data_fields, dict):
        # v3 takes dataFields as an object; the v2 list of {key, value} is refused.
        details.append({"item": f"{where}dataFields", "description": "Must be an object"})
        data_fields = {}
    for name, value in data_fields.items():
        known = state._field(str(name))
        if known is None:
            details.append({"item": str(name), "description": "Data field does not exist"})
        elif not _value_ok(known["type"], value):
            details.append(
                {"item": str(name), "description": f"Invalid value for a {known['type']} field"}
            )
    lists = body.get("lists", [])
    if "lists" in body and (not isinstance(lists, list) or not 0 < len(lists) <= MAX_LISTS):
        details.append({"item": f"{where}lists", "description": "1 to 100 list ids expected"})
    else:
        for list_id in lists:
            if not isinstance(list_id, int) or list_id not in state.address_books:
                details.append({"item": f"{where}lists", "description": f"Unknown list {list_id}"})
    channel = body.get("channelProperties", {})
    email_channel = channel.get("email", {}) if isinstance(channel, dict) else None
    if not isinstance(email_channel, dict):
        details.append({"item": f"{where}channelProperties", "description": "Must be an object"})
    else:
        for key, allowed in (
            ("emailType", EMAIL_TYPES),
            ("optInType", OPT_IN_TYPES),
            ("status", CHANNEL_STATUSES),
        ):
            if key in email_channel and email_channel[key] not in allowed:
                details.append(
                    {
                        "item": f"{where}channelProperties.email.{key}",
                        "description": f"Invalid value '{email_channel[key]}'; expected one of "
                        + ", ".join(allowed),
                    }
                )
    return details


def _data_field_problem(details: list[dict[str, str]]) -> bool:
    return any(d["description"] == "Data field does not exist" for d in details)


# --- the app --------------------------------------------------------------------------------


class _CurrentState:
    """Reads ``app.config["STATE"]`` on every access, so a long-lived server (a test session's)
    can be handed a fresh account by assigning a new state."""

    def __init__(self, app: Flask) -> None:
        self._app = app

    def __getattr__(self, name: str) -> Any:
        return getattr(self._app.config["STATE"], name)


def create_app(state: DotdigitalState | None = None, *, home: bool = True) -> Flask:
    """The fake as a Flask app; ``app.config["STATE"]`` is the state it serves (replaceable).

    :param home: False for a region that is not the account's: only ``account-info`` answers
    """
    app = Flask("fake_dotdigital")
    app.config["STATE"] = state or DotdigitalState()
    state = _CurrentState(app)  # type: ignore[assignment]

    @app.before_request
    def authenticate() -> Response | None:
        header = request.headers.get("Authorization", "")
        ok = False
        if header.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                user, password = "", ""
            ok = hmac.compare_digest(user, state.username) and hmac.compare_digest(
                password, state.password
            )
        if not ok:
            if request.path.startswith("/v2/"):
                return _json({"message": "Authorization has been denied for this request."}, 401)
            return Response(status=401)  # v3 documents 401 with no body
        if not home and request.path != "/v2/account-info":
            return _json({"message": "Access is denied"}, 403)
        return None

    # v2 --------------------------------------------------------------------------------------

    @app.get("/v2/account-info")
    def account_info() -> Response:
        endpoint = state.api_endpoint or request.host_url
        return _json(
            {
                "id": state.account_id,
                "properties": [
                    {"name": "Name", "type": "String", "value": "Fake Shop"},
                    {"name": "MainEmail", "type": "String", "value": "owner@example.com"},
                    {"name": "ApiEndpoint", "type": "String", "value": endpoint},
                    {"name": "ApiCallsRemaining", "type": "Int32", "value": "2000"},
                ],
            }
        )

    @app.get("/v2/data-fields")
    def list_data_fields() -> Response:
        with state.lock:
            return _json(list(state.data_fields.values()))

    @app.post("/v2/data-fields")
    def create_data_field() -> Response:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return v2_error(400, "The request body is invalid.", "ERROR_PARAMETER_INVALID")
        name = body.get("name")
        if not isinstance(name, str) or not DATA_FIELD_NAME.match(name):
            return v2_error(
                400,
                "Data field names are 1-20 letters, digits, '_' or '-'.",
                "ERROR_PARAMETER_INVALID",
            )
        type_ = body.get("type", "String")
        if type_ not in DATA_FIELD_TYPES:
            return v2_error(400, f"Invalid data field type '{type_}'.", "ERROR_PARAMETER_INVALID")
        visibility = body.get("visibility", "Private")
        if visibility not in ("Private", "Public"):
            return v2_error(400, "Invalid visibility.", "ERROR_PARAMETER_INVALID")
        default = body.get("defaultValue")
        if not _value_ok(type_, default):
            return v2_error(400, "Invalid default value.", "ERROR_PARAMETER_INVALID")
        with state.lock:
            if name.upper() in state.data_fields:
                return v2_error(400, "Field already exists.", "ERROR_NON_UNIQUE_DATAFIELD")
            created = {
                "name": name.upper(),
                "type": type_,
                "visibility": visibility,
                "defaultValue": default,
            }
            state.data_fields[name.upper()] = created
        return _json(created, 201)

    def _book(book: dict[str, Any]) -> dict[str, Any]:
        members = sum(book["id"] in c.lists for c in state.contacts.values())
        return {**book, "contacts": members}

    @app.get("/v2/address-books")
    def list_address_books() -> Response:
        try:
            select = int(request.args.get("select", "1000"))
            skip = int(request.args.get("skip", "0"))
        except ValueError:
            return v2_error(400, "select and skip must be numbers.", "ERROR_PARAMETER_INVALID")
        if not 1 <= select <= 1000 or skip < 0:
            return v2_error(400, "select must be 1 to 1000.", "ERROR_PARAMETER_INVALID")
        with state.lock:
            books = [_book(b) for _, b in sorted(state.address_books.items())]
        return _json(books[skip : skip + select])

    @app.get("/v2/address-books/<int:book_id>")
    def get_address_book(book_id: int) -> Response:
        with state.lock:
            book = state.address_books.get(book_id)
            if book is None:
                return v2_error(404, "Address book not found.", "ERROR_ADDRESSBOOK_NOT_FOUND")
            return _json(_book(book))

    @app.post("/v2/address-books")
    def create_address_book() -> Response:
        body = request.get_json(silent=True)
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not 0 < len(name) <= 128:
            return v2_error(400, "Name is required (1-128 chars).", "ERROR_PARAMETER_INVALID")
        if name.lower() in ("test", "all contacts"):
            return v2_error(400, "That name is reserved.", "ERROR_ADDRESSBOOK_INVALID")
        with state.lock:
            if any(b["name"] == name for b in state.address_books.values()):
                return v2_error(400, "Duplicate name.", "ERROR_ADDRESSBOOK_DUPLICATE")
            book_id = state.add_address_book(name)
            return _json(_book(state.address_books[book_id]))

    # v3 contacts ------------------------------------------------------------------------------

    def _contact_json(contact: FakeContact) -> dict[str, Any]:
        return {
            "contactId": contact.contact_id,
            "status": contact.status,
            "created": contact.created,
            "updated": contact.updated,
            "identifiers": {"email": contact.email},
            "dataFields": dict(contact.data_fields),
            "channelProperties": {
                "email": {
                    "emailType": contact.email_type,
                    "optInType": contact.opt_in_type,
                    "status": contact.status,
                }
            },
            "lists": [
                {"id": i, "name": state.address_books[i]["name"], "status": "subscribed"}
                for i in sorted(contact.lists)
                if i in state.address_books
            ],
        }

    @app.patch("/contacts/v3/<identifier>/<path:value>")
    def import_contact(identifier: str, value: str) -> Response:
        if identifier != "email":
            return v3_error(
                400, "contacts:invalidIdentifier", f"The identifier '{identifier}' is not known"
            )
        merge = PATCH_MERGE.get(request.args.get("merge-option", "overwrite"))
        if merge is None:
            return v3_error(400, "contacts:invalidMergeOption", "Invalid merge-option")
        if not EMAIL.match(value) or len(value) > 256:
            return v3_error(
                400,
                "contacts:invalidId",
                f"The id value '{value}' is invalid for the identifier 'email'",
            )
        body = request.get_json(silent=True)
        with state.lock:
            details = _check_contact(state, body)
            if isinstance(details, Response):
                return details
            if details:
                code = (
                    "contacts:invalidDataFields"
                    if _data_field_problem(details)
                    else "contacts:invalidContacts"
                )
                return v3_error(400, code, "Invalid contact data", details)
            if value.lower() in state.suppressed:
                return v3_error(
                    400,
                    "contacts:contactSuppressed",
                    f"The contact '{value}' is suppressed and cannot be updated",
                )
            channel = (body.get("channelProperties") or {}).get("email") or {}
            contact, created = state.apply(
                value, body.get("dataFields") or {}, body.get("lists") or [], channel, merge
            )
            return _json(_contact_json(contact), 201 if created else 200)

    @app.put("/contacts/v3/import")
    def import_contacts() -> Response:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("contacts"), list):
            return v3_error(400, "contacts:badJson", "The request JSON is badly formed")
        rows = body["contacts"]
        if not rows:
            return v3_error(400, "contacts:noContactsSpecified", "Specify 1 or more contacts")
        if len(rows) > state.max_import_contacts:
            return v3_error(
                400,
                "contacts:tooManyContacts",
                f"An import may hold at most {state.max_import_contacts} contacts",
            )
        merge = IMPORT_MERGE.get(body.get("mergeOption", "overwrite"))
        if merge is None:
            return v3_error(400, "contacts:invalidMergeOption", "Invalid mergeOption")
        with state.lock:
            details: list[dict[str, str]] = []
            for index, row in enumerate(rows):
                problems = _check_contact(state, row, where=f"contacts[{index}].")
                if isinstance(problems, Response):
                    return problems
                details.extend(problems)
                match = row.get("matchIdentifier")
                identifiers = row.get("identifiers")
                if not isinstance(identifiers, dict) or match not in identifiers:
                    details.append(
                        {
                            "item": f"contacts[{index}].matchIdentifier",
                            "description": "matchIdentifier must name one of the identifiers",
                        }
                    )
            if details:
                code = (
                    "contacts:invalidDataFields"
                    if _data_field_problem(details)
                    else "contacts:invalidContacts"
                )
                return v3_error(400, code, "Invalid contact data", details)
            if state.active_imports() >= state.max_active_imports:
                return v3_error(
                    429,
                    "contacts:tooManyActiveImports",
                    "Your import request cannot be accepted as too many imports are being "
                    "processed for you account. Please wait for an import to complete and then "
                    "resubmit.",
                )
            job = ImportJob(str(uuid.uuid4()), rows, merge)
            state.imports[job.import_id] = job
        return _json({"importId": job.import_id}, 202)

    @app.get("/contacts/v3/import/<import_id>")
    def import_status(import_id: str) -> Response:
        with state.lock:
            job = state.imports.get(import_id)
            if job is None:
                return v3_error(
                    404,
                    "contacts:importNotFound",
                    f"The import request '{import_id}' could not be found!",
                )
            state._maybe_finish(job, polled=True)
            body: dict[str, Any] = {"importId": job.import_id, "status": job.status}
            if job.result:
                body.update(job.result)
            return _json(body)

    return app
