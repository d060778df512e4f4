"""pointbridge plugin for Splio: loyalty fields on Splio contacts, events as interactions.

The shop's Splio scenarios read the custom fields (points balance, missions, rewards, referrals
counts, lifetime points, VIP tier, its end and the points to the next one); with an
``events_channel`` each event is an interaction (``events``) that starts them. Splio sends no
webhooks in this integration.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from marshmallow import Schema, validate
from marshmallow import fields as schema_fields

from pointbridge import (
    Capability,
    ConfigurationError,
    Contact,
    InstallResult,
    Integration,
    ItemFailure,
    Platform,
    RateLimit,
    hookimpl,
)
from pointbridge.kit import setting_fields
from pointbridge.kit.fields import ExistingField, ensure_fields
from pointbridge_splio.client import DEFAULT_API_URL, OFF_CONTACTS, SplioClient
from pointbridge_splio.events import emit_event
from pointbridge_splio.fields import field_specs
from pointbridge_splio.sync import ContactSync


class SplioSettings(Schema):
    api_key = setting_fields.secret(
        "API key of a Splio API user (Splio → users → API users → new user)."
    )
    api_url = setting_fields.api_url(
        DEFAULT_API_URL, "Splio API address; change it only if Splio tells you to."
    )
    list_id = setting_fields.optional_id(
        "ID of a Splio list that customers with marketing consent join when pointbridge "
        "creates them; empty: no list for anyone."
    )
    events_channel = schema_fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=100),
        metadata={
            "description": "Interaction channel set up in Splio (Data > Interactions) that "
            "pointbridge's events arrive on; empty: no events."
        },
    )


PLATFORM = Platform(
    name="splio",
    title="Splio",
    settings_schema=SplioSettings,
    capabilities=frozenset({Capability.EVENTS}),
    max_batch=1000,
    # Splio, per client IP: 20 requests/s on data/contacts, and 10/s on everything else,
    # counted apart (client.py sends those calls under the second).
    rate_limit=RateLimit(20, 1.0),
    rate_limits={OFF_CONTACTS: RateLimit(10, 1.0)},
    # Interactions (``POST /events/``) go one a request, under the budget of every endpoint
    # but contacts.
    event_rate=10.0,
    # Without the channel the shop set up for pointbridge, an integration takes no events.
    events_setting="events_channel",
    # Existing contacts are updated one PATCH at a time: with one call in flight, Splio's
    # round trip (100-200 ms) would cap updates far below the 20/s budget. Four calls at
    # once fill it; the shared pacer still keeps them under 20/s together.
    max_in_flight=4,
    description="Loyalty points, counts and VIP tier in Splio contact custom fields.",
    target_settings=("api_url",),
)


@hookimpl
def register_platforms(register: Callable[[Platform], None]) -> None:
    register(PLATFORM)


@hookimpl
def install(integration: Integration) -> InstallResult:
    client = SplioClient(integration)
    client.bearer()  # a refused key stops here, before anything is created

    notes: list[str] = []
    unique_key = client.unique_key()
    if unique_key == "cellphone":
        raise ConfigurationError(
            "This Splio universe identifies contacts by cellphone; pointbridge identifies "
            "them by e-mail. Ask Splio to make e-mail the universe's unique key."
        )
    if unique_key and re.fullmatch(r"c\d+", unique_key):
        notes.append(
            f"This universe identifies contacts by custom field {unique_key}, not by e-mail; "
            "updates of existing contacts will only work if that field holds the e-mail."
        )

    existing = [
        # Splio's listing gives no field types, so there is no type to compare.
        ExistingField(str(element["name"]), "", element.get("id"))
        for element in client.contact_fields()
        if isinstance(element.get("name"), str) and not element.get("is_system")
    ]
    fields = ensure_fields(
        field_specs(integration.field_prefix),
        existing,
        lambda spec: client.create_field(spec.name, spec.type).get("id"),
        same_type=lambda data_type: "",
    )
    message = (
        f"Splio: {len(fields.created)} custom field(s) created, {len(fields.existing)} reused."
    )
    return InstallResult(
        created=fields.created,
        existing=fields.existing,
        data={
            # Every field install made sure of, by name, with its id where Splio gave one:
            # contact writes fill these and no others (a field pointbridge added since
            # waits for the next install, which creates it).
            "fields": {name: None if i is None else int(i) for name, i in fields.ids.items()},
            "unique_key": unique_key,
        },
        message=" ".join([message, *notes]),
    )


@hookimpl
def push_contact(integration: Integration, contacts: Sequence[Contact]) -> list[ItemFailure]:
    return ContactSync(SplioClient(integration), integration).push(contacts)


__all__ = ["PLATFORM", "emit_event", "install", "push_contact", "register_platforms"]
