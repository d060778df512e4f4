from __future__ import annotations

from collections.abc import Callable

import pytest
from pointbridge_smartemailing import SmartEmailingSettings, install
from pointbridge_smartemailing.client import AUTH_MESSAGE, DEFAULT_API_URL
from pointbridge_smartemailing.fake import FakeSmartEmailing

from pointbridge import AuthError, ChoiceRequired, Integration
from pointbridge.plugins import PluginHost
from pointbridge.testing import FakeServer

FIELD_TYPES = {
    "ellity_credit": "text",
    "ellity_credit_num": "text",
    "ellity_pin": "text",
    "ellity_registered": "text",
    "ellity_next_expiration_date": "date",
    "ellity_next_expiration_value": "text",
    "ellity_last_change_date": "date",
    "ellity_last_change_value": "text",
    "ellity_referral_code": "text",
    "ellity_referral_link": "text",
    "ellity_lifetime_points": "text",
    "ellity_tier_expires_at": "date",
    "ellity_points_to_next_tier": "text",
}


def _fields(fake: FakeSmartEmailing) -> dict[str, str]:
    return {f["name"]: f["type"] for f in fake.customfields.values()}


def test_registered_with_smartemailings_limits() -> None:
    platform = PluginHost().platforms["smartemailing"].platform
    assert platform.max_batch == 500
    assert platform.max_event_batch == 500
    assert platform.rate_limit is not None
    assert platform.secret_settings() == {"api_key"}
    assert {c.value for c in platform.capabilities} == {"events", "webhooks"}


def test_settings_default_to_production_and_empty_list_means_none() -> None:
    loaded = SmartEmailingSettings().load(
        {"username": "shop@example.cz", "api_key": "k", "contact_list_id": ""}
    )
    assert loaded["api_url"] == DEFAULT_API_URL == "https://app.smartemailing.cz/api/v3/"
    assert loaded["contact_list_id"] is None


def test_bad_credentials_say_what_to_check_and_create_nothing(
    make_integration: Callable[..., Integration], fake: FakeSmartEmailing
) -> None:
    integration = make_integration(api_key="wrong-key-secret")
    with pytest.raises(AuthError) as caught:
        install(integration)
    assert str(caught.value) == AUTH_MESSAGE
    assert "Create API key" in str(caught.value)
    assert "wrong-key-secret" not in str(caught.value)
    assert fake.customfields == {}


def test_install_creates_prefixed_fields_with_types_and_stores_ids(
    make_integration: Callable[..., Integration], fake: FakeSmartEmailing
) -> None:
    result = install(make_integration())
    assert _fields(fake) == FIELD_TYPES
    assert sorted(result.created) == sorted(FIELD_TYPES)
    assert result.existing == []
    assert result.data["field_prefix"] == "ellity_"
    assert result.data["customfields"] == {name: fake.field_id(name) for name in FIELD_TYPES}


def test_second_install_creates_nothing(
    make_integration: Callable[..., Integration], fake: FakeSmartEmailing, server: FakeServer
) -> None:
    first = install(make_integration())
    second = install(make_integration(data=first.data))
    assert second.created == []
    assert sorted(second.existing) == sorted(FIELD_TYPES)
    assert second.data == first.data
    assert len(fake.customfields) == len(FIELD_TYPES)
    assert len(server.requests_to("POST", "/customfields")) == len(FIELD_TYPES)


def test_reuses_fields_found_on_a_later_page(
    make_integration: Callable[..., Integration], fake: FakeSmartEmailing
) -> None:
    for n in range(230):
        fake.add_customfield(f"shop field {n}")
    pin_id = fake.add_customfield("ellity_pin")
    result = install(make_integration())
    assert "ellity_pin" in result.existing
    assert result.data["customfields"]["ellity_pin"] == pin_id
    assert [f["name"] for f in fake.customfields.values()].count("ellity_pin") == 1


def test_legacy_prefix_gets_its_own_fields(
    make_integration: Callable[..., Integration], fake: FakeSmartEmailing
) -> None:
    install(make_integration())
    result = install(make_integration(prefix="mehub_"))
    assert sorted(result.created) == sorted(n.replace("ellity_", "mehub_") for n in FIELD_TYPES)
    assert len(fake.customfields) == 2 * len(FIELD_TYPES)


def test_field_of_another_type_is_reused_and_reported(
    make_integration: Callable[..., Integration], fake: FakeSmartEmailing
) -> None:
    fake.add_customfield("ellity_next_expiration_date", "text")
    result = install(make_integration())
    assert "ellity_next_expiration_date" in result.existing
    assert "The field ellity_next_expiration_date exists as text" in result.message


def test_unknown_list_asks_the_admin_to_pick_one(
    make_integration: Callable[..., Integration], fake: FakeSmartEmailing
) -> None:
    with pytest.raises(ChoiceRequired) as caught:
        install(make_integration(contact_list_id=99))
    assert caught.value.setting == "contact_list_id"
    assert caught.value.options == [("1", "Newsletter"), ("7", "Loyalty members")]
    assert "99" in str(caught.value)
    assert fake.customfields == {}


def test_existing_list_is_accepted(
    make_integration: Callable[..., Integration], fake: FakeSmartEmailing
) -> None:
    result = install(make_integration(contact_list_id=7))
    assert len(result.created) == len(FIELD_TYPES)
