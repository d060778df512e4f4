"""The integration form: its fields generated from a platform's settings schema (the JSON Schema
the management API answers), and what a posted form changes, in the shape ``Integrations.add``
and ``.update`` take. Checking the values is theirs: a bad value comes back as their message."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from werkzeug.datastructures import MultiDict

from pointbridge.contract.events import EventType
from pointbridge.contract.platform import Capability, Platform
from pointbridge.integrations import reminder_days
from pointbridge.storage.models import IntegrationRow
from pointbridge.web.api.registry import settings_json_schema

# Words a setting's name spells in capitals on the page ("api_key" is "API key").
_UPPER = {"api": "API", "id": "ID", "url": "URL"}
# Blank rows under a list rewards table, for new lists.
BLANK_REWARD_ROWS = 2


@dataclass(frozen=True)
class SettingField:
    """One input of the form. ``value`` is never a secret's: secrets are not sent back."""

    name: str
    label: str
    input_type: str  # text, email, url, password, number
    required: bool
    secret: bool
    description: str
    value: str
    placeholder: str


def label(name: str) -> str:
    words = [_UPPER.get(word, word) for word in name.split("_")]
    return " ".join([words[0][:1].upper() + words[0][1:], *words[1:]])


def _input_type(prop: Mapping[str, Any]) -> str:
    if prop.get("writeOnly"):
        return "password"
    if prop.get("format") in ("email", "url"):
        return str(prop["format"])
    types = prop.get("type")
    types = types if isinstance(types, list) else [types]
    return "number" if "integer" in types else "text"


def setting_fields(
    platform: Platform, row: IntegrationRow | None, posted: Mapping[str, str] | None = None
) -> list[SettingField]:
    """The platform's settings as inputs: what the admin posted (a refused form is shown again
    as typed), else the saved value, else the default."""
    schema = settings_json_schema(platform)
    required = set(schema.get("required", ()))
    saved = row.settings if row is not None else {}
    built = []
    for name, prop in schema.get("properties", {}).items():
        secret = bool(prop.get("writeOnly"))
        default = prop.get("default")
        if secret:
            value = ""
        elif posted is not None and name in posted:
            value = posted[name]
        else:
            current = saved.get(name, default)
            value = "" if current is None else str(current)
        placeholder = ""
        if secret and row is not None:
            placeholder = "saved: leave empty to keep it"
        built.append(
            SettingField(
                name=name,
                label=label(name),
                input_type=_input_type(prop),
                # A saved secret may stay empty: it keeps the one saved.
                required=name in required and not (secret and row is not None),
                secret=secret,
                description=str(prop.get("description", "")),
                value=value,
                placeholder=placeholder,
            )
        )
    return built


def reward_rows(
    row: IntegrationRow | None, form: MultiDict[str, str] | None = None
) -> list[tuple[str, str]]:
    """The list rewards table's rows (list id, points), with blank ones to add more."""
    if form is not None:
        rows = list(zip(form.getlist("reward_list"), form.getlist("reward_points"), strict=False))
    else:
        rewards = row.list_rewards if row is not None else {}
        rows = [(list_id, str(points)) for list_id, points in (rewards or {}).items()]
    return [*rows, *[("", "")] * BLANK_REWARD_ROWS]


def _rewards(form: MultiDict[str, str]) -> dict[str, str]:
    # A row left blank is no list; a half-filled one goes on to the service, which names it.
    return {
        list_id.strip(): points.strip()
        for list_id, points in zip(
            form.getlist("reward_list"), form.getlist("reward_points"), strict=False
        )
        if list_id.strip() or points.strip()
    }


def number_list(numbers: Iterable[int | str]) -> str:
    """Numbers as the form shows them and compares them: "14, 3"."""
    return ", ".join(str(number).strip() for number in numbers if str(number).strip())


def saved_notice_days(row: IntegrationRow | None) -> str:
    """Every expiry reminder's days ahead ("14, 3"); empty while the notice is off."""
    return number_list(reminder_days(row)) if row is not None else ""


def _notice(form: MultiDict[str, str]) -> str | None:
    """What the expiry notice choice says, as the service takes it; None when the form has no
    choice (the platform has no events: the fieldset is disabled)."""
    choice = form.get("expiry_notice")
    if choice is None:
        return None
    return (
        number_list(form.get("expiry_notice_days", "").split(",")) if choice == "notify" else "off"
    )


def _events(row: IntegrationRow | None, form: MultiDict[str, str]) -> dict[str, Any]:
    """The event types switched off and the reward thresholds, where they changed; nothing
    when the form has no events fieldset (disabled: the platform has no events)."""
    if "events_shown" not in form:
        return {}
    values: dict[str, Any] = {}
    disabled = sorted({str(kind) for kind in EventType} - set(form.getlist("send_event")))
    if disabled != sorted((row and row.disabled_events) or []):
        values["disabled_events"] = disabled
    thresholds = number_list(form.get("reward_thresholds", "").split(","))
    if thresholds != number_list((row and row.reward_thresholds) or []):
        values["reward_thresholds"] = thresholds
    return values


def changed_values(
    platform: Platform, row: IntegrationRow | None, form: MultiDict[str, str]
) -> dict[str, Any]:
    """The settings the form changes (all it names, for a new integration): a secret left
    empty keeps the saved one, an empty setting with a default goes back to it."""
    schema = settings_json_schema(platform)
    values: dict[str, Any] = {}
    for name, prop in schema.get("properties", {}).items():
        typed = form.get(name, "").strip()
        default = prop.get("default")
        if prop.get("writeOnly") and not typed and row is not None:
            continue
        if not typed and default is not None:
            typed = str(default)
        if row is not None and typed == str(row.settings.get(name, default) or ""):
            continue
        if typed:
            values[name] = typed
        elif row is not None:
            values[name] = None  # emptied: an optional setting cleared
        # Empty in a new one: left out, so the schema's default, or its "required", applies.
    prefix = form.get("field_prefix", "").strip() or "ellity_"
    if row is None or prefix != row.field_prefix:
        values["field_prefix"] = prefix
    notice = _notice(form)
    if notice is not None and (row is None or notice != (saved_notice_days(row) or "off")):
        values["expiry_notice_days"] = notice
    values.update(_events(row, form))
    if platform.supports(Capability.WEBHOOKS):
        rewards = _rewards(form)
        saved = {key: str(points) for key, points in ((row and row.list_rewards) or {}).items()}
        if rewards != saved:
            values["list_rewards"] = rewards
    return values
