"""``install``: check the key, make sure a list is chosen, take stock of its custom fields.

Ecomail's API has no call that defines a custom field (none found in docs.ecomail.cz); a list
gains a field when a subscriber write first carries it, typed by the value's ``type``. Creating
the fields at install time would therefore mean writing a made-up contact into the shop's real
list. Instead install reports which fields the list already has and which the first sync will
add (every push carries every field, typed), and warns when an existing field has a type that
will not behave (a number field an admin made as text, say).
"""

from __future__ import annotations

from typing import Any

from pointbridge import ChoiceRequired, InstallResult, Integration
from pointbridge_ecomail.client import EcomailClient
from pointbridge_ecomail.fields import CATALOG, DATE, INT, STRING, field_name, normalize_key
from pointbridge_ecomail.settings import list_id_of

# Ecomail reports field types in its own words; these are the ones that fit each catalog type.
COMPATIBLE_TYPES: dict[str, set[str]] = {
    STRING: {"string", "varchar", "text"},
    INT: {"int", "integer", "number", "float", "numeric"},
    DATE: {"date", "datetime"},
}


def _options(client: EcomailClient) -> list[tuple[str, str]]:
    options = []
    for entry in client.lists():
        if isinstance(entry, dict) and entry.get("id") is not None:
            options.append((str(entry["id"]), str(entry.get("name") or f"List {entry['id']}")))
    return options


def install(integration: Integration) -> InstallResult:
    client = EcomailClient.for_integration(integration)
    list_id = list_id_of(integration)
    if not list_id:
        # Also the credentials check: GET lists fails with AuthError on a bad key.
        options = _options(client)
        raise ChoiceRequired(
            "list_id",
            options,
            "Pick the Ecomail list to keep the loyalty fields in."
            if options
            else "Your Ecomail account has no contact list yet: create one in Ecomail, "
            "then install again.",
        )
    detail = client.list_detail(list_id)
    if detail is None:
        raise ChoiceRequired(
            "list_id",
            _options(client),
            f"Ecomail has no list with id {list_id}: pick one of your lists.",
        )
    present: dict[str, Any] = {
        normalize_key(str(name)): spec for name, spec in (detail.get("custom_fields") or {}).items()
    }
    existing: list[str] = []
    pending: list[str] = []
    warnings: list[str] = []
    types: dict[str, str] = {}
    for spec in CATALOG:
        name = field_name(integration.field_prefix, spec)
        types[name] = spec.type
        if name not in present:
            pending.append(name)
            continue
        existing.append(name)
        found = present[name].get("type") if isinstance(present[name], dict) else None
        if found and str(found).lower() not in COMPATIBLE_TYPES[spec.type]:
            warnings.append(f"{name} is a {found} field in Ecomail but should be {spec.type}")
    list_name = str(detail.get("name") or list_id)
    parts = [f'Ecomail list "{list_name}" (id {list_id}).']
    if existing:
        parts.append(f"{len(existing)} loyalty field(s) already there.")
    if pending:
        parts.append(
            f"Ecomail adds the other {len(pending)} ({', '.join(pending)}) at the first sync: "
            "its API creates custom fields only when a contact first gets a value."
        )
    if warnings:
        parts.append(
            "Check in Ecomail (list → Custom fields): "
            + "; ".join(warnings)
            + ". Segments and automations comparing them may misbehave."
        )
    return InstallResult(
        created=[],
        existing=existing,
        data={
            "list_id": list_id,
            "list_name": list_name,
            "field_types": types,
            "pending_fields": pending,
        },
        message=" ".join(parts),
    )
