"""pointbridge plugin for Dotdigital (formerly dotmailer).

Keeps each customer's points balance, referral URL, membership state, VIP tier and tier
progress in Dotdigital contact data fields, and adds the contacts to one address book.
Dotdigital gets no events and sends no webhooks in this integration: its automations read the
data fields.
"""

from __future__ import annotations

from collections.abc import Callable

from pointbridge import InstallResult, Integration, Platform, RateLimit, hookimpl
from pointbridge.kit.choices import pick
from pointbridge.kit.fields import ExistingField, ensure_fields
from pointbridge_dotmailer.client import connect, discover_endpoint
from pointbridge_dotmailer.fields import NAME_FIELDS, field_specs
from pointbridge_dotmailer.settings import DotdigitalSettings
from pointbridge_dotmailer.sync import push_contact

NAME = "dotmailer"

# The v3 import's per-request maximum is not documented; 1,000 keeps a request well under a
# megabyte and matches the v2 page size. See README "Unconfirmed".
MAX_BATCH = 1000

PLATFORM = Platform(
    name=NAME,
    title="Dotdigital (dotmailer)",
    settings_schema=DotdigitalSettings,
    capabilities=frozenset(),
    max_batch=MAX_BATCH,
    # Bulk imports sit in Dotdigital's "low" call tier: 35 calls a minute on the Basic
    # package. Larger packages allow more; this is the floor every account gets.
    rate_limit=RateLimit(35, 60.0),
    # Another preset writes other fields: every customer is sent again to fill them.
    target_settings=("api_url", "username", "address_book_id", "field_preset"),
    description="Loyalty data in Dotdigital contact data fields, contacts in one address book.",
)


@hookimpl
def register_platforms(register: Callable[[Platform], None]) -> None:
    register(PLATFORM)


@hookimpl
def install(integration: Integration) -> InstallResult:
    # A prefix Dotdigital cannot take is reported before anything is sent.
    specs = field_specs(integration)
    endpoint = discover_endpoint(integration)  # checks the credentials
    client = connect(integration, endpoint)
    book = pick(
        "address_book_id",
        integration.settings.get("address_book_id"),
        find=lambda chosen: client.address_book(int(chosen)),
        options=lambda: [
            (
                str(book["id"]),
                f"{book.get('name', book['id'])} ({book.get('contacts', 0)} contacts)",
            )
            for book in client.address_books()
        ],
        platform="Dotdigital",
        what="address book",
        advice="Pick the address book that holds all of the shop's customers.",
        create="create one in Dotdigital (Audience → Lists)",
    )

    account_fields = client.data_fields()
    ensured = ensure_fields(
        list(specs.values()),
        [ExistingField(str(f["name"]), str(f.get("type") or "")) for f in account_fields],
        # A contact not written yet shows a balance of 0; Smile's numeric tier id stays empty.
        lambda spec: client.create_data_field(spec, 0 if spec == specs["points"] else None),
    )
    present = {str(field["name"]).upper() for field in account_fields}
    message = f"Contacts go to address book “{book.get('name', book['id'])}” via {endpoint}."
    if specs["tier_id"].type == "Numeric":
        message += f" {specs['tier_id'].name} is numeric: a tier id not a number is left empty."
    return InstallResult(
        created=ensured.created,
        existing=ensured.existing,
        data={
            "api_endpoint": endpoint,
            "address_book_id": int(book["id"]),
            "fields": {key: spec.name for key, spec in specs.items()},
            "name_fields": [field for field in NAME_FIELDS.values() if field in present],
        },
        message=" ".join([message, *ensured.warnings]),
    )


__all__ = ["PLATFORM", "install", "push_contact", "register_platforms"]
