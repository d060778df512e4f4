"""pointbridge plugin for Splio: loyalty fields on Splio contacts.

Splio gets no events and sends no webhooks in this integration: the shop's Splio scenarios
read the custom fields (points balance, missions, rewards, referrals counts, VIP tier).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from pointbridge import (
    ConfigurationError,
    Contact,
    InstallResult,
    Integration,
    ItemFailure,
    Platform,
    RateLimited,
    hookimpl,
)
from pointbridge_splio.client import client_for
from pointbridge_splio.fields import FIELDS, field_name
from pointbridge_splio.pacing import RATE_LIMIT
from pointbridge_splio.settings import SplioSettings
from pointbridge_splio.sync import push_contacts

PLATFORM = Platform(
    name="splio",
    title="Splio",
    settings_schema=SplioSettings,
    capabilities=frozenset(),
    max_batch=1000,
    # Splio: 20 requests/s on data/contacts, 10/s elsewhere, per client IP; the client paces
    # its requests with the same budget (and the 10/s apart).
    rate_limit=RATE_LIMIT,
    # Existing contacts are updated one PATCH at a time: with one call in flight, Splio's
    # round trip (100-200 ms) would cap updates far below the 20/s budget. Four calls at
    # once fill it; the shared pacer still keeps them under 20/s together.
    max_in_flight=4,
    description="Loyalty points, counts and VIP tier in Splio contact custom fields.",
    export_after_install=True,
)

_CUSTOM_FIELD_KEY = re.compile(r"^c\d+$")


@hookimpl
def register_platforms(register: Callable[[Platform], None]) -> None:
    register(PLATFORM)


# An admin waits for install: a short rate-limit pause is better spent waiting than failing.
INSTALL_PATIENCE_SECONDS = 10.0


@hookimpl
def install(integration: Integration) -> InstallResult:
    waited = 0.0
    while True:
        try:
            # Safe to repeat: fields created by an interrupted attempt are found and reused.
            return _install(integration)
        except RateLimited as exc:
            wait = exc.retry_after if exc.retry_after is not None else 1.0
            if waited + wait > INSTALL_PATIENCE_SECONDS:
                raise
            time.sleep(wait)
            waited += wait


def _install(integration: Integration) -> InstallResult:
    client = client_for(integration)
    client.token()  # a refused key stops here, before anything is created

    notes: list[str] = []
    unique_key = client.unique_key()
    if unique_key == "cellphone":
        raise ConfigurationError(
            "This Splio universe identifies contacts by cellphone; pointbridge identifies "
            "them by e-mail. Ask Splio to make e-mail the universe's unique key."
        )
    if unique_key and _CUSTOM_FIELD_KEY.match(unique_key):
        notes.append(
            f"This universe identifies contacts by custom field {unique_key}, not by e-mail; "
            "updates of existing contacts will only work if that field holds the e-mail."
        )

    by_name: dict[str, Any] = {}
    for element in client.contact_fields():
        name = element.get("name")
        if isinstance(name, str) and not element.get("is_system"):
            by_name.setdefault(name.lower(), element)

    created: list[str] = []
    existing: list[str] = []
    ids: dict[str, int] = {}
    for spec in FIELDS:
        name = field_name(integration.field_prefix, spec)
        found = by_name.get(name.lower())
        if found is not None:
            existing.append(name)
        else:
            found = client.create_field(name, spec.type)
            created.append(name)
        if found.get("id") is not None:
            ids[name] = int(found["id"])

    message = f"Splio: {len(created)} custom field(s) created, {len(existing)} reused."
    return InstallResult(
        created=created,
        existing=existing,
        data={"fields": ids, "unique_key": unique_key},
        message=" ".join([message, *notes]),
    )


@hookimpl
def push_contact(integration: Integration, contacts: Sequence[Contact]) -> list[ItemFailure]:
    return push_contacts(client_for(integration), integration, contacts)
