"""pointbridge plugin for Dotdigital (formerly dotmailer).

Keeps each customer's points balance, referral URL, membership state and VIP tier in Dotdigital
contact data fields, and adds the contacts to one address book. Dotdigital gets no events and
sends no webhooks in this integration: its automations read the data fields.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pointbridge import (
    ChoiceRequired,
    Contact,
    InstallResult,
    Integration,
    ItemFailure,
    Platform,
    RateLimit,
    hookimpl,
)
from pointbridge.ratelimit import Pacer, pacer_for
from pointbridge_dotmailer import connection
from pointbridge_dotmailer.fields import FIELDS, NAME_FIELDS, field_names
from pointbridge_dotmailer.settings import DotdigitalSettings
from pointbridge_dotmailer.sync import push

NAME = "dotmailer"

# The v3 import's per-request maximum is not documented; 1,000 keeps a request well under a
# megabyte and matches the v2 page size. See README "Unconfirmed".
MAX_BATCH = 1000

# Bulk imports sit in Dotdigital's "low" call tier: 35 calls a minute on the Basic package.
# Larger packages allow more; this is the floor every account gets.
RATE_LIMIT = RateLimit(35, 60.0)

PLATFORM = Platform(
    name=NAME,
    title="Dotdigital (dotmailer)",
    settings_schema=DotdigitalSettings,
    capabilities=frozenset(),
    max_batch=MAX_BATCH,
    rate_limit=RATE_LIMIT,
    description="Loyalty data in Dotdigital contact data fields, contacts in one address book.",
)


@hookimpl
def register_platforms(register: Callable[[Platform], None]) -> None:
    register(PLATFORM)


def _address_book_choice(books: list[dict], message: str) -> ChoiceRequired:
    options = [
        (str(book["id"]), f"{book.get('name', book['id'])} ({book.get('contacts', 0)} contacts)")
        for book in books
    ]
    if not options:
        message += (
            " The account has no address book yet: create one in Dotdigital "
            "(Audience → Lists) and install again."
        )
    return ChoiceRequired("address_book_id", options, message)


def _pacer(integration: Integration) -> Pacer:
    # The budget the host paces this integration's calls with; the plugin's contact writes
    # take their slots from it too (the first of a call uses the one the host took).
    return pacer_for(integration.id, PLATFORM.rate_limit)


@hookimpl
def install(integration: Integration) -> InstallResult:
    # A prefix Dotdigital cannot take is reported before anything is sent.
    names = field_names(integration.field_prefix)
    settings = integration.settings
    pacer = _pacer(integration)
    endpoint = connection.discover_endpoint(integration, pacer)  # checks the credentials
    client = connection.client_at(endpoint, integration, pacer)

    book_setting = str(settings.get("address_book_id") or "").strip()
    advice = "Pick the address book that holds all of the shop's customers."
    if not book_setting:
        raise _address_book_choice(
            client.address_books(), f"Choose the Dotdigital address book to sync to. {advice}"
        )
    book = client.address_book(int(book_setting))
    if book is None:
        raise _address_book_choice(
            client.address_books(),
            f"Dotdigital has no address book {book_setting} (deleted?). {advice}",
        )

    existing = {str(field["name"]).upper(): field for field in client.data_fields()}
    created: list[str] = []
    reused: list[str] = []
    notes: list[str] = []
    for spec in FIELDS:
        name = names[spec.key]
        if name in existing:
            reused.append(name)
            found_type = existing[name].get("type")
            if found_type and found_type != spec.type:
                notes.append(f"{name} exists as {found_type} (pointbridge would use {spec.type})")
        elif client.create_data_field(name, spec.type, spec.default):
            created.append(name)
        else:
            reused.append(name)  # created meanwhile by someone else: same outcome

    name_fields = [field for field in NAME_FIELDS.values() if field in existing]
    message = f"Contacts go to address book “{book.get('name', book_setting)}” via {endpoint}."
    if notes:
        message += " Note: " + "; ".join(notes) + "."
    return InstallResult(
        created=created,
        existing=reused,
        data={
            "api_endpoint": endpoint,
            "address_book_id": int(book_setting),
            "fields": names,
            "name_fields": name_fields,
        },
        message=message,
    )


@hookimpl
def push_contact(integration: Integration, contacts: Sequence[Contact]) -> list[ItemFailure]:
    return push(connection.regional_client(integration, _pacer(integration)), integration, contacts)
