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

from pointbridge import InstallResult, Integration, hookimpl
from pointbridge.kit.choices import pick
from pointbridge.kit.fields import ExistingField, ensure_fields
from pointbridge_ecomail import client
from pointbridge_ecomail.fields import DATE, INT, STRING, normalize_key, wanted

# Ecomail reports field types in its own words; each maps to the catalog type it behaves as.
TYPE_FAMILIES = {
    **dict.fromkeys(("varchar", "text"), STRING),
    **dict.fromkeys(("integer", "number", "float", "numeric"), INT),
    "datetime": DATE,
}


def _family(type_: str) -> str:
    lowered = type_.strip().lower()
    return TYPE_FAMILIES.get(lowered, lowered)


def _existing(detail: dict[str, Any]) -> list[ExistingField]:
    # A field written without a type is a string field in Ecomail.
    return [
        ExistingField(
            str(name), str(found.get("type") or STRING) if isinstance(found, dict) else STRING
        )
        for name, found in (detail.get("custom_fields") or {}).items()
    ]


@hookimpl
def install(integration: Integration) -> InstallResult:
    api = client.api(integration)
    # Either call is also the credentials check: a bad key is an AuthError.
    detail = pick(
        "list_id",
        integration.settings.get("list_id"),
        find=lambda chosen: client.list_detail(api, chosen),
        options=lambda: [
            (str(entry["id"]), str(entry.get("name") or f"List {entry['id']}"))
            for entry in client.lists(api)
            if isinstance(entry, dict) and entry.get("id") is not None
        ],
        platform="Ecomail",
        what="list",
        advice="pointbridge keeps the loyalty fields there and subscribes every customer to it.",
        create="create one in Ecomail",
    )
    list_id = str(integration.settings["list_id"])
    # Nothing to create: a missing field is only noted, the first sync brings it in.
    fields = ensure_fields(
        wanted(integration.field_prefix),
        _existing(detail),
        lambda spec: None,
        same_name=normalize_key,
        same_type=_family,
    )
    list_name = str(detail.get("name") or list_id)
    parts = [f'Ecomail list "{list_name}" (id {list_id}).']
    if fields.existing:
        parts.append(f"{len(fields.existing)} loyalty field(s) already there.")
    if fields.created:
        parts.append(
            f"Ecomail adds the other {len(fields.created)} ({', '.join(fields.created)}) at the "
            "first sync: "
            "its API creates custom fields only when a contact first gets a value."
        )
    return InstallResult(
        created=[],
        existing=fields.existing,
        data={"list_id": list_id, "list_name": list_name, "pending_fields": fields.created},
        message=" ".join([*parts, *fields.warnings]),
    )
