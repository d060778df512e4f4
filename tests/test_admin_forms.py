"""The console's integration form: what a posted form changes, as ``Integrations.add`` and
``.update`` take it. A secret left empty is kept, an emptied optional setting is cleared, an
untouched one is no change (so no needless install), and a new one's empty settings are left to
the schema's defaults."""

from __future__ import annotations

from werkzeug.datastructures import MultiDict

from pointbridge.contract.events import EventType
from pointbridge.plugins import PluginHost
from pointbridge.storage.models import IntegrationRow
from pointbridge.web.admin.forms import changed_values, setting_fields

HOST = PluginHost()


def _saved(**settings: object) -> IntegrationRow:
    return IntegrationRow(
        name="newsletter",
        platform="smartemailing",
        settings={"username": "shop@example.com", "api_url": "http://fake.test/", **settings},
        field_prefix="ellity_",
        expiry_notice_days=7,
        list_rewards={"3": 50},
    )


def _form(**fields: str | list[str]) -> MultiDict[str, str]:
    posted = {
        "username": "shop@example.com",
        "api_key": "",
        "api_url": "http://fake.test/",
        "contact_list_id": "",
        "field_prefix": "ellity_",
        "expiry_notice": "notify",
        "expiry_notice_days": "7",
        "reward_list": ["3", ""],
        "reward_points": ["50", ""],
        **fields,
    }
    return MultiDict(
        [
            (key, value)
            for key, values in posted.items()
            for value in (values if isinstance(values, list) else [values])
        ]
    )


def test_an_untouched_form_changes_nothing_and_keeps_the_secret() -> None:
    platform = HOST.platform("smartemailing")

    assert changed_values(platform, _saved(), _form()) == {}


def test_what_the_admin_changed_is_all_that_is_sent() -> None:
    platform = HOST.platform("smartemailing")
    form = _form(api_key="new-key", expiry_notice="off", reward_points=["60", ""])

    assert changed_values(platform, _saved(contact_list_id=5), form) == {
        "api_key": "new-key",
        "contact_list_id": None,
        "expiry_notice_days": "off",
        "list_rewards": {"3": "60"},
    }


def test_a_new_integration_leaves_empty_settings_to_the_schema() -> None:
    platform = HOST.platform("webhooks")
    form = MultiDict(
        {"url": "https://shop.example/hook", "secret": "whsec_x", "expiry_notice": "off"}
    )

    values = changed_values(platform, None, form)

    assert values == {
        "url": "https://shop.example/hook",
        "secret": "whsec_x",
        "field_prefix": "ellity_",
        "expiry_notice_days": "off",
    }


def test_no_secret_is_sent_back_to_the_form() -> None:
    platform = HOST.platform("smartemailing")
    row = _saved()
    row.settings = {**row.settings, "api_key": "se-key-1234567890"}

    shown = {field.name: field for field in setting_fields(platform, row)}

    assert shown["api_key"].value == "" and shown["api_key"].input_type == "password"
    assert not shown["api_key"].required  # empty keeps the saved one
    assert shown["username"].value == "shop@example.com"


def test_reminders_and_events_change_only_when_the_admin_changed_them() -> None:
    platform = HOST.platform("smartemailing")
    row = _saved()
    row.expiry_reminders = [14, 3]
    row.expiry_notice_days = 14
    row.disabled_events = ["pin-changed"]
    row.reward_thresholds = [500, 1000]
    sent = [str(kind) for kind in EventType if kind != EventType.PIN_CHANGED]
    untouched = _form(
        expiry_notice_days="14,3",
        events_shown="1",
        send_event=sent,
        reward_thresholds="500,1000",
    )

    assert changed_values(platform, row, untouched) == {}

    changed = _form(
        expiry_notice_days="14, 7, 3",
        events_shown="1",
        send_event=[kind for kind in sent if kind != "tier-changed"],
        reward_thresholds="",
    )
    assert changed_values(platform, row, changed) == {
        "expiry_notice_days": "14, 7, 3",
        "disabled_events": ["pin-changed", "tier-changed"],
        "reward_thresholds": "",
    }
