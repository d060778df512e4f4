"""Dotdigital API calls, through the integration's ``ApiClient`` (``integration.client``).

Dotdigital has two API frameworks side by side: v2 (account info, data fields, address books;
errors as ``{"message": "... ERROR_CODE"}``) and v3 contacts (errors as
``{"errorCode": "contacts:...", "description": ..., "details": [...]}``). Both take HTTP Basic
with an API user's e-mail and password on every call, on the account's regional host.

``GET /v2/account-info`` on the configured host (r1) names the account's ``ApiEndpoint``; every
other call goes there. Install stores it in ``InstallResult.data``; should the data lack it (an
integration installed by an older version), it is looked up once and kept in the integration's
``state``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import requests

from pointbridge import Integration, PermanentError, RateLimited, TransientError
from pointbridge.kit.fields import FieldExists, FieldSpec
from pointbridge.kit.http import (
    ApiClient,
    error_summary,
    json_object,
    parse_reset,
    parse_retry_after,
)
from pointbridge.kit.jobs import JobLost, wait_for_job

DEFAULT_API_URL = "https://r1-api.dotdigital.com/"

AUTH_MESSAGE = (
    "Dotdigital refused the API user: check the API user's e-mail and password "
    "(Dotdigital → Settings → Access → API users)."
)

# Dotdigital asks clients to allow 121 s before treating a call as timed out.
TIMEOUT = (5.0, 121.0)

# v2 lists page by select/skip; 1000 is the documented maximum page size.
PAGE_SIZE = 1000

# Imports usually finish in seconds; one still running after the budget is sent again later,
# which is safe because an overwrite import is an upsert.
POLL_DELAYS: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0, 2.0)
POLL_BUDGET_SECONDS = 60.0

# More than 25 imports running: Dotdigital says to wait for one to finish. Imports take seconds.
ACTIVE_IMPORTS_WAIT = 10.0


def ratelimit_wait(response: requests.Response, now: float | None = None) -> float | None:
    """Seconds to wait from a Dotdigital 429: ``ACTIVE_IMPORTS_WAIT`` when 25 imports are
    running, else ``Retry-After``, else ``x-ratelimit-reset``, which Dotdigital describes as the
    epoch second the window reopens (``parse_reset`` reads plain seconds too)."""
    if error_code(response) == "contacts:tooManyActiveImports":
        return ACTIVE_IMPORTS_WAIT
    wait = parse_retry_after(response.headers.get("Retry-After"))
    return parse_reset(response.headers.get("x-ratelimit-reset"), now) if wait is None else wait


def legacy_rate_limit(response: requests.Response) -> RateLimited | None:
    """The legacy flat scheme (calls per hour) answers 400 ``ERROR_APIUSAGE_EXCEEDED``, not 429."""
    if response.status_code == 400 and error_code(response) == "ERROR_APIUSAGE_EXCEEDED":
        return RateLimited(f"Dotdigital's hourly API limit: {error_summary(response)}")
    return None


def error_code(response: requests.Response) -> str:
    """The v3 ``errorCode`` or the v2 ``ERROR_*`` token of an error response, or ''."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    if isinstance(body.get("errorCode"), str):
        return body["errorCode"]
    last = str(body.get("message") or "").rpartition(" ")[2]
    return last if last.startswith("ERROR_") else ""


class DotdigitalClient:
    """One API user on one Dotdigital host, for one integration.

    Dotdigital counts calls per tier, each tier in its own per-minute window: contact writes
    (imports in the "low" tier, single updates in "medium") are what the integration's rate
    limit stands for, so they go through ``writes``, paced by the integration's budget.
    Account info, data fields, address books (install) and import status polls sit in the
    higher tiers and go through ``http``, unpaced: spacing a poll 1.8 s apart like an import
    would only slow every batch down.
    """

    def __init__(self, writes: ApiClient, http: ApiClient) -> None:
        self.writes = writes
        self.http = http

    # v2 -------------------------------------------------------------------------------------

    def api_endpoint(self) -> str:
        """The account's regional API host, from ``GET /v2/account-info``."""
        for prop in json_object(self.http.get("v2/account-info")).get("properties") or []:
            if isinstance(prop, dict) and prop.get("name") == "ApiEndpoint" and prop.get("value"):
                return str(prop["value"]).rstrip("/") + "/"
        # Accounts always carry it; without it the configured host is the best guess.
        return self.http.base_url

    def data_fields(self) -> list[dict[str, Any]]:
        return list(self.http.get("v2/data-fields").json())

    def create_data_field(self, spec: FieldSpec, default: int | None = None) -> None:
        """Create a data field (``FieldExists`` when one of that name already exists)."""
        body = {"name": spec.name, "type": spec.type, "visibility": "Private"}
        response = self.http.post(
            "v2/data-fields", json={**body, "defaultValue": default}, passthrough=(400,)
        )
        if error_code(response) == "ERROR_NON_UNIQUE_DATAFIELD":
            raise FieldExists
        if response.status_code == 400:
            raise PermanentError(
                f"Dotdigital refused to create the data field {spec.name}: "
                + error_summary(response)
            )

    def address_books(self) -> list[dict[str, Any]]:
        """Every address book, paging with select/skip until a page comes back empty."""
        books: list[dict[str, Any]] = []
        while page := self.http.get(
            "v2/address-books", params={"select": PAGE_SIZE, "skip": len(books)}
        ).json():
            books.extend(page)
        return books

    def address_book(self, book_id: int) -> dict[str, Any] | None:
        response = self.http.get(f"v2/address-books/{book_id}", passthrough=(400, 404))
        if response.status_code == 404 or error_code(response) == "ERROR_ADDRESSBOOK_NOT_FOUND":
            return None
        if response.status_code == 400:
            raise PermanentError(f"GET v2/address-books/{book_id}: {error_summary(response)}")
        return json_object(response)

    # v3 contacts ----------------------------------------------------------------------------

    def upsert_contact(self, email: str, body: Mapping[str, Any]) -> requests.Response:
        """Create or update one contact (``PATCH /contacts/v3/email/{email}``).

        Returns the response; a 400 (the contact's data was refused) is returned, not raised,
        so the caller can fail that one contact.
        """
        return self.writes.patch(
            f"contacts/v3/email/{quote(email, safe='@')}",
            params={"merge-option": "overwrite"},
            json=dict(body),
            passthrough=(400,),
        )

    def contact_exists(self, email: str) -> bool:
        """Whether the account has a contact with this address (``GET
        /contacts/v3/email/{email}``, 404 ``contacts:contactNotFound`` when not)."""
        path = f"contacts/v3/email/{quote(email, safe='@')}"
        return self.http.get(path, passthrough=(404,)).status_code != 404

    def start_import(self, contacts: Sequence[Mapping[str, Any]]) -> str:
        """Submit a bulk import (``PUT /contacts/v3/import``) and return its id."""
        rows = [{"matchIdentifier": "email", **contact} for contact in contacts]
        body = {"mergeOption": "overwrite", "contacts": rows}
        response = self.writes.put("contacts/v3/import", json=body, passthrough=(400,))
        if response.status_code == 400:
            raise import_rejected(response)
        import_id = json_object(response).get("importId")
        if not import_id:
            raise TransientError(
                f"PUT contacts/v3/import: no importId in {error_summary(response)}"
            )
        return str(import_id)

    def import_status(self, import_id: str) -> dict[str, Any]:
        path = f"contacts/v3/import/{quote(import_id, safe='')}"
        response = self.http.get(path, passthrough=(404,))
        if response.status_code == 404:
            # Only our own ids are polled; a vanished one means the import state was lost.
            raise JobLost(f"GET {path}: Dotdigital no longer knows this import")
        return json_object(response)

    def wait_for_import(self, import_id: str) -> dict[str, Any]:
        """The import's final status, polled while it is ``NotStarted`` or ``NotFinished``."""
        return wait_for_job(
            lambda: self.import_status(import_id),
            lambda status: status.get("status") not in ("NotFinished", "NotStarted", None),
            what=f"Dotdigital import {import_id}",
            delays=POLL_DELAYS,
            budget=POLL_BUDGET_SECONDS,
        )


def is_data_field_error(response: requests.Response) -> bool:
    """Whether a 400 says a data field does not exist (v3 ``contacts:…DataField…`` codes, v2
    ``ERROR_DATAFIELD_NOTFOUND``)."""
    return "datafield" in error_code(response).lower().replace("_", "")


def import_rejected(response: requests.Response) -> PermanentError:
    """A 400 on a contact write: the request as a whole was refused."""
    detail = error_summary(response)
    if is_data_field_error(response):
        return PermanentError(
            "Dotdigital does not know one of the data fields pointbridge writes; install the "
            f"integration again to re-create them. ({detail})"
        )
    return PermanentError(f"Dotdigital refused the import: {detail}")


def connect(integration: Integration, base_url: str) -> DotdigitalClient:
    """The integration's clients on one Dotdigital host: paced for contact writes, unpaced
    for the rest."""
    client = functools.partial(
        integration.client,
        base_url,
        auth=(str(integration.settings["username"]), str(integration.settings["password"])),
        headers={"Content-Type": "application/json"},
        auth_message=AUTH_MESSAGE,
        retry_after=ratelimit_wait,
        platform_error=legacy_rate_limit,
        timeout=TIMEOUT,
    )
    return DotdigitalClient(client(), client(paced=False))


def _api_url(integration: Integration) -> str:
    return str(integration.settings.get("api_url") or DEFAULT_API_URL)


def discover_endpoint(integration: Integration) -> str:
    """Ask the configured host which regional host serves this account (always a call)."""
    return connect(integration, _api_url(integration)).api_endpoint()


class _Region:
    """The regional host of an integration whose install data lacks it, once looked up."""

    endpoint = ""


def regional_client(integration: Integration) -> DotdigitalClient:
    """The client on the account's regional host, looking the host up only when unknown."""
    endpoint = integration.data.get("api_endpoint")
    if not endpoint:
        region = integration.state(_Region)
        region.endpoint = endpoint = region.endpoint or discover_endpoint(integration)
    return connect(integration, str(endpoint))
