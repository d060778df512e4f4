"""A fake Dotdigital API, for tests and benchmarks (wrap it in ``pointbridge.testing.FakeServer``).

It follows the documented API where a document exists (see the plugin README for what is
confirmed): HTTP Basic with an API user, ``/v2/account-info`` naming the regional
``ApiEndpoint``, v2 data fields (values checked by type: a Date takes ISO 8601 or ``null``) and
address books with ``{"message": "... ERROR_CODE"}`` errors, v3 contacts (``PATCH
/contacts/v3/email/{email}``, asynchronous ``PUT /contacts/v3/import``) with ``{"errorCode",
"description", "details"}`` errors, lower-case request enums and the 25-running-imports limit.
Rate limits and failures are ``FakeServer``'s: pass ``throttled=throttled`` for Dotdigital's 429
with ``x-ratelimit-*`` headers, and plan them with ``server.fail_next(...)``::

    state = DotdigitalState(address_books={7: "Customers"})
    with FakeServer(create_app(state), throttled=throttled) as server:
        server.fail_next(1, "429", path="/contacts/v3/import", retry_after=30)
        ...  # settings {"api_url": server.url, "username": state.username, ...}
        state.contacts["jan@example.com"].data_fields["ELLITY_POINTS"]

Import ids are UUIDs numbered from 1 (``import_id(1)``), so a test can aim a fault at a poll;
``state.imports`` (``fakes.Jobs``) sets how many polls answer ``NotFinished`` and can end
imports unrun (``state.imports.outcome = "Failed"``). As the v3 docs say, a suppressed contact
(``FakeContact(..., status="suppressed")``) is updated like any other and stays suppressed.

For an account in another region serve the same state twice: ``create_app(state, home=False)``
as r1 (it answers only ``account-info``, anything else 403 like a wrong region) and
``create_app(state)`` with ``state.api_endpoint`` set to its URL, which ``account-info``
advertises (the fake's own URL while None).
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn

from flask import Flask, Response, request

from pointbridge.testing import fakes

DATA_FIELD_NAME = re.compile(r"[A-Za-z0-9_-]{1,20}")
DEFAULT_DATA_FIELDS = ("FIRSTNAME", "LASTNAME", "FULLNAME", "GENDER", "POSTCODE")
# ISO 8601, as every date in Dotdigital's API: a day, or a day and time with an optional offset.
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?")


def _is_date(value: Any) -> bool:
    """A Date data field's check: ``null`` (clears it) or an ISO 8601 text of a real day."""
    if value is None:
        return True
    if not isinstance(value, str) or not ISO_DATE.fullmatch(value):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:  # 2026-02-30
        return False
    return True


DATA_FIELD_CHECKS = {
    "String": fakes.nullable(str),
    "Date": _is_date,
    "Numeric": fakes.nullable(int, float),
    "Boolean": fakes.nullable(bool),
}
CHANNEL_ENUMS = {
    "emailType": ("html", "plainText"),
    "optInType": ("unknown", "single", "double", "verifiedDouble"),
    "status": ("subscribed", "unsubscribed", "suppressed"),
}
# The merge option as PATCH's query and as the import body spell it -> how the fake merges.
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
import_id = fakes.job_id


@dataclass
class FakeContact:
    contact_id: int
    email: str
    data_fields: dict[str, Any] = field(default_factory=dict)
    lists: set[int] = field(default_factory=set)
    status: str = "subscribed"


class DotdigitalState:
    """Everything the fake account holds; read it in assertions, under ``lock`` if racing.

    :param finish_after_polls: an import answers ``NotFinished`` to this many status polls
        before it is processed (Dotdigital imports are asynchronous)
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
        max_import_contacts: int = 1000,
        max_active_imports: int = 25,
        bench: bool = False,
    ) -> None:
        # Benchmarks: an import holds only the addresses it names and creates each, storing
        # nothing; it is still asynchronous (polled as any other).
        self.bench = bench
        self.lock = threading.RLock()
        self.username = username
        self.password = password
        self.api_endpoint = api_endpoint
        self.address_books: dict[int, dict[str, Any]] = {}
        for book_id, name in (address_books or {}).items():
            self.address_books[book_id] = {"id": book_id, "name": name, "visibility": "Private"}
        self.data_fields = fakes.FieldStore(
            DATA_FIELD_CHECKS,
            key_of=str.upper,
            unknown="Data field does not exist",
            invalid="Invalid value for a {type} field",
        )
        for name in data_fields:
            self.data_fields.add(name, "String", visibility="Public", defaultValue=None)
        self.contacts: dict[str, FakeContact] = {}
        self.imports = fakes.Jobs(
            self._process, pending="NotFinished", finish_after_polls=finish_after_polls
        )
        self.optin_emails: list[str] = []  # double opt-in confirmations the fake "sent"
        self.resubscribed: list[str] = []  # unsubscribed contacts written back to subscribed
        self.max_import_contacts = max_import_contacts
        self.max_active_imports = max_active_imports
        self._contact_ids = itertools.count(1000)

    def add_address_book(self, name: str) -> int:
        with self.lock:
            book_id = max([0, *self.address_books]) + 1
            self.address_books[book_id] = {"id": book_id, "name": name, "visibility": "Private"}
            return book_id

    def book_members(self, book_id: int) -> set[str]:
        with self.lock:
            return {email for email, c in self.contacts.items() if book_id in c.lists}

    def apply(self, email: str, body: Mapping[str, Any], merge: str) -> tuple[FakeContact, bool]:
        """Create or update the contact of one v3 body. A suppressed contact is updated too:
        only ``channelProperties`` change a status (the unified contacts docs)."""
        key = email.lower()
        created = key not in self.contacts
        if created:
            self.contacts[key] = FakeContact(next(self._contact_ids), email)
        contact = self.contacts[key]
        channel = (body.get("channelProperties") or {}).get("email") or {}
        # What is not sent stays as it is (a new contact: Dotdigital's defaults).
        if channel.get("status") == "subscribed" and contact.status == "unsubscribed":
            self.resubscribed.append(email)
        contact.status = channel.get("status", contact.status)
        if channel.get("optInType") in ("double", "verifiedDouble"):
            self.optin_emails.append(email)
            if created:
                contact.status = "pendingOptIn"
        for name, value in (body.get("dataFields") or {}).items():
            current = contact.data_fields.get(name.upper())
            if merge == "ifNotEmpty" and value in (None, ""):
                continue
            if merge == "ifEmpty" and current not in (None, ""):
                continue
            contact.data_fields[name.upper()] = value
        contact.lists.update(body.get("lists") or [])
        return contact, created

    def _process(self, job: fakes.Job) -> tuple[str, dict[str, Any]]:
        if self.bench:
            created = [{"contactId": 0, "identifiers": {"email": e}} for e in job.payload]
            summary = {"newContacts": len(created)}
            return "Finished", {"summary": summary, "created": created, "failures": []}
        rows, merge = job.payload
        counters = ("newContacts", "updatedContacts", "invalidEntries", "duplicateIdentifiers")
        # v3 updates suppressed contacts too, so none is ever counted as left alone.
        summary = dict.fromkeys((*counters, "globallySuppressed"), 0)
        result: dict[str, Any] = {"summary": summary, "created": [], "updated": [], "failures": []}
        seen: set[str] = set()
        for row in rows:
            email = str(row["identifiers"].get("email") or "")
            if not fakes.is_email(email):
                summary["invalidEntries"] += 1
                failure = {
                    "failureCode": "invalidEmail",
                    "description": "Invalid value for 'email'",
                }
            elif email.lower() in seen:
                summary["duplicateIdentifiers"] += 1
                failure = {
                    "failureCode": "duplicateIdentifier",
                    "description": f"Duplicate identifier detected for email '{email}'",
                }
            else:
                seen.add(email.lower())
                contact, created = self.apply(email, row, merge)
                ref = {"contactId": contact.contact_id, "identifiers": {"email": contact.email}}
                result["created" if created else "updated"].append(ref)
                summary["newContacts" if created else "updatedContacts"] += 1
                continue
            match = {key: row[key] for key in ("matchIdentifier", "identifiers")}
            result["failures"].append({**match, "failures": [failure]})
        return "Finished", result


# --- responses -------------------------------------------------------------------------------


v2 = fakes.JsonErrors(
    lambda status, text, code="ERROR_PARAMETER_INVALID": {"message": f"{text} {code}"}
)
v3 = fakes.JsonErrors(
    lambda status, code, description, details=None: (
        {"errorCode": code, "description": description} | ({"details": details} if details else {})
    )
)


def _bad_json(problem: str) -> NoReturn:
    v3.fail(400, "contacts:badJson", "The request JSON is badly formed")


def _invalid_contacts(details: list[dict[str, str]]) -> Response:
    unknown_field = any(d["description"] == "Data field does not exist" for d in details)
    code = "contacts:invalidDataFields" if unknown_field else "contacts:invalidContacts"
    return v3.response(400, code, "Invalid contact data", details)


def throttled(wait: float) -> tuple[int, dict[str, str], bytes]:
    """Dotdigital's tiered 429, for ``FakeServer(throttled=...)``: ``x-ratelimit-reset`` is the
    epoch second the window reopens, the nearest to ``wait`` seconds from now."""
    headers = {
        "x-ratelimit-limit": "35",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": str(round(time.time() + max(wait, 0.0))),
    }
    body = {"errorCode": "rateLimitExceeded", "description": "Too many requests"}
    return fakes.too_many_requests(body, headers)


# --- validation -----------------------------------------------------------------------------


def _check_data_field(state: DotdigitalState, body: dict[str, Any]) -> None:
    """A v2 data field to create, refused with Dotdigital's 400 unless valid."""
    if not isinstance(body.get("name"), str) or not DATA_FIELD_NAME.fullmatch(body["name"]):
        v2.fail(400, "Data field names are 1-20 letters, digits, '_' or '-'.")
    type_ = body.get("type", "String")
    if type_ not in DATA_FIELD_CHECKS:
        v2.fail(400, f"Invalid data field type '{type_}'.")
    if body.get("visibility", "Private") not in ("Private", "Public"):
        v2.fail(400, "Invalid visibility.")
    if not state.data_fields.accepts(type_, body.get("defaultValue")):
        v2.fail(400, "Invalid default value.")


def _check_contact(state: DotdigitalState, body: Any, where: str = "") -> list[dict[str, str]]:
    """Problems in one v3 contact body (an import's row when ``where`` names it), as
    ``details`` entries."""
    details: list[dict[str, str]] = []

    def problem(item: str, description: str) -> None:
        details.append({"item": item, "description": description})

    identifiers = body.get("identifiers", {})
    if not isinstance(identifiers, dict):
        problem(f"{where}identifiers", "Must be an object")
    elif where and body.get("matchIdentifier") not in identifiers:
        problem(f"{where}matchIdentifier", "matchIdentifier must name one of the identifiers")
    data_fields = body.get("dataFields", {})
    if not isinstance(data_fields, dict):
        # v3 takes dataFields as an object; the v2 list of {key, value} is refused.
        problem(f"{where}dataFields", "Must be an object")
        data_fields = {}
    for name, value in data_fields.items():
        try:
            state.data_fields.check(name, value)
        except fakes.FieldError as exc:
            problem(str(name), str(exc))
    lists = body.get("lists", [])
    if "lists" in body and (not isinstance(lists, list) or not 0 < len(lists) <= MAX_LISTS):
        problem(f"{where}lists", "1 to 100 list ids expected")
    else:
        for list_id in lists:
            if not isinstance(list_id, int) or list_id not in state.address_books:
                problem(f"{where}lists", f"Unknown list {list_id}")
    channel = body.get("channelProperties", {})
    email_channel = channel.get("email", {}) if isinstance(channel, dict) else None
    if not isinstance(email_channel, dict):
        problem(f"{where}channelProperties", "Must be an object")
        return details
    for key, allowed in CHANNEL_ENUMS.items():
        if key in email_channel and email_channel[key] not in allowed:
            problem(
                f"{where}channelProperties.email.{key}",
                f"Invalid value '{email_channel[key]}'; expected one of " + ", ".join(allowed),
            )
    return details


def _contact_json(state: DotdigitalState, contact: FakeContact) -> dict[str, Any]:
    return {
        "contactId": contact.contact_id,
        "status": contact.status,
        "identifiers": {"email": contact.email},
        "dataFields": dict(contact.data_fields),
        "channelProperties": {"email": {"status": contact.status}},
        "lists": [
            {"id": i, "name": state.address_books[i]["name"], "status": "subscribed"}
            for i in sorted(contact.lists)
            if i in state.address_books
        ],
    }


# --- the app --------------------------------------------------------------------------------


def create_app(state: DotdigitalState | None = None, *, home: bool = True) -> Flask:
    """The fake as a Flask app serving ``state``.

    :param home: False for a region that is not the account's: only ``account-info`` answers
    """
    app = Flask("fake_dotdigital")
    state = state or DotdigitalState()

    def denied() -> Response:
        if request.path.startswith("/v2/"):
            return fakes.json_response(
                {"message": "Authorization has been denied for this request."}, 401
            )
        return Response(status=401)  # v3 documents 401 with no body

    fakes.require_auth(app, lambda: fakes.basic_auth_is(state.username, state.password), denied)

    @app.before_request
    def other_region() -> Response | None:
        if not home and request.path != "/v2/account-info":
            return fakes.json_response({"message": "Access is denied"}, 403)
        return None

    # v2 --------------------------------------------------------------------------------------

    @app.get("/v2/account-info")
    def account_info() -> Response:
        properties = {
            "Name": "Fake Shop",
            "MainEmail": "owner@example.com",
            "ApiEndpoint": state.api_endpoint or request.host_url,
        }
        listed = [{"name": k, "type": "String", "value": v} for k, v in properties.items()]
        return fakes.json_response({"id": 424242, "properties": listed})

    @app.get("/v2/data-fields")
    def list_data_fields() -> Response:
        with state.lock:
            return fakes.json_response(list(state.data_fields.values()))

    @app.post("/v2/data-fields")
    def create_data_field() -> Response:
        body = fakes.json_body(v2.reject(400))
        _check_data_field(state, body)
        with state.lock:
            if body["name"].upper() in state.data_fields:
                return v2.response(400, "Field already exists.", "ERROR_NON_UNIQUE_DATAFIELD")
            created = state.data_fields.add(
                body["name"],
                body.get("type", "String"),
                visibility=body.get("visibility", "Private"),
                defaultValue=body.get("defaultValue"),
            )
        return fakes.json_response(created, 201)

    def _book(book: dict[str, Any]) -> dict[str, Any]:
        return {**book, "contacts": len(state.book_members(book["id"]))}

    @app.get("/v2/address-books")
    def list_address_books() -> Response:
        with state.lock:
            books = [_book(b) for _, b in sorted(state.address_books.items())]
        page, _, _ = fakes.offset_page(
            books, v2.reject(400), offset="skip", limit="select", default_limit=1000
        )
        return fakes.json_response(page)

    @app.get("/v2/address-books/<int:book_id>")
    def get_address_book(book_id: int) -> Response:
        with state.lock:
            book = state.address_books.get(book_id)
            if book is None:
                # The message Dotdigital's own connectors match on.
                return v2.response(404, "Error:", "ERROR_ADDRESSBOOK_NOT_FOUND")
            return fakes.json_response(_book(book))

    # v3 contacts ------------------------------------------------------------------------------

    @app.get("/contacts/v3/email/<path:value>")
    def get_contact(value: str) -> Response:
        with state.lock:
            contact = state.contacts.get(value.lower())
            if contact is None:
                return v3.response(404, "contacts:contactNotFound", "Contact not found")
            return fakes.json_response(_contact_json(state, contact))

    @app.patch("/contacts/v3/email/<path:value>")
    def import_contact(value: str) -> Response:
        merge = PATCH_MERGE.get(request.args.get("merge-option", "overwrite"))
        if merge is None:
            return v3.response(400, "contacts:invalidMergeOption", "Invalid merge-option")
        if not fakes.is_email(value) or len(value) > 256:
            invalid = f"The id value '{value}' is invalid for the identifier 'email'"
            return v3.response(400, "contacts:invalidId", invalid)
        body = fakes.json_body(_bad_json)
        with state.lock:
            details = _check_contact(state, body)
            if details:
                return _invalid_contacts(details)
            contact, created = state.apply(value, body, merge)
            return fakes.json_response(_contact_json(state, contact), 201 if created else 200)

    @app.put("/contacts/v3/import")
    def import_contacts() -> Response:
        if state.bench:
            with state.lock:
                job = state.imports.start(fakes.bench_emails())
            return fakes.json_response({"importId": job.id}, 202)
        body = fakes.json_body(_bad_json)
        rows = fakes.objects(body.get("contacts"), _bad_json, "contacts")
        if not rows:
            return v3.response(400, "contacts:noContactsSpecified", "Specify 1 or more contacts")
        if len(rows) > state.max_import_contacts:
            return v3.response(
                400,
                "contacts:tooManyContacts",
                f"An import may hold at most {state.max_import_contacts} contacts",
            )
        merge = IMPORT_MERGE.get(body.get("mergeOption", "overwrite"))
        if merge is None:
            return v3.response(400, "contacts:invalidMergeOption", "Invalid mergeOption")
        with state.lock:
            details: list[dict[str, str]] = []
            for index, row in enumerate(rows):
                details.extend(_check_contact(state, row, where=f"contacts[{index}]."))
            if details:
                return _invalid_contacts(details)
            if state.imports.running() >= state.max_active_imports:
                return v3.response(
                    429,
                    "contacts:tooManyActiveImports",
                    "Your import request cannot be accepted as too many imports are being "
                    "processed for you account. Please wait for an import to complete and then "
                    "resubmit.",
                )
            job = state.imports.start((rows, merge))
        return fakes.json_response({"importId": job.id}, 202)

    @app.get("/contacts/v3/import/<import_id>")
    def import_status(import_id: str) -> Response:
        with state.lock:
            job = state.imports.poll(import_id)
            if job is None:
                missing = f"The import request '{import_id}' could not be found!"
                return v3.response(404, "contacts:importNotFound", missing)
            return fakes.json_response(
                {"importId": job.id, "status": job.status, **(job.result or {})}
            )

    return app
