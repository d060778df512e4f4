"""Install: the API key is checked, the loyalty custom fields exist once, ids are kept."""

from __future__ import annotations

import pytest
from pointbridge_splio import install
from pointbridge_splio.fake import FakeSplio

from pointbridge import AuthError, Capability, ConfigurationError
from pointbridge.plugins import PluginHost
from pointbridge.testing import FakeServer

OUR_FIELDS = {
    "ellity_points_balance": "int",
    "ellity_missions_count": "int",
    "ellity_rewards_count": "int",
    "ellity_referrals_count": "int",
    "ellity_tier": "text",
    "ellity_lifetime_points": "int",
    "ellity_points_to_next_tier": "int",
    "ellity_tier_expires_at": "date",
}


def test_the_host_sees_splio_as_declared() -> None:
    host = PluginHost()
    platform = host.platform("splio")
    assert platform.title == "Splio"
    assert platform.max_batch == 1000
    assert (platform.rate_limit.calls, platform.rate_limit.per_seconds) == (20, 1.0)
    assert platform.export_after_install is True
    assert platform.supports(Capability.EVENTS)  # as interactions, with an events_channel
    assert not platform.supports(Capability.WEBHOOKS)
    assert platform.secret_settings() == {"api_key"}
    settings = platform.settings_schema().load({"api_key": "k"})
    assert settings["api_url"] == "https://api.splio.com/"
    # A fake or a proxy on a loopback address is a valid URL too.
    assert platform.settings_schema().load({"api_key": "k", "api_url": "http://127.0.0.1:8080"})
    hooks = {impl.plugin_name for impl in host.pm.hook.emit_event.get_hookimpls()}
    assert "splio" in hooks


def test_a_refused_key_says_where_to_look_and_creates_nothing(
    fake: FakeSplio, server: FakeServer, make_integration
) -> None:
    before = fake.custom_field_names()
    with pytest.raises(AuthError) as raised:
        install(make_integration(api_key="wrong-key-42"))
    assert str(raised.value) == ("Splio refused the API key: check it (Splio → users → API users).")
    assert "wrong-key-42" not in str(raised.value)
    assert fake.custom_field_names() == before
    assert server.requests_to("POST", "/data/fields") == []


def test_install_creates_the_eight_fields_with_their_types(
    fake: FakeSplio, server: FakeServer, make_integration
) -> None:
    result = install(make_integration())

    assert sorted(result.created) == sorted(OUR_FIELDS)
    assert result.existing == []
    for name, data_type in OUR_FIELDS.items():
        assert fake.field_by_name(name)["data_type"] == data_type
        assert result.data["fields"][name] == fake.field_by_name(name)["id"]
    bodies = [r.json() for r in server.requests_to("POST", "/data/fields")]
    assert all(b["scope"] == "contacts" for b in bodies)
    assert "civility" in fake.custom_field_names()  # the universe's own fields stay


def test_a_second_install_reuses_every_field(fake: FakeSplio, make_integration) -> None:
    first = install(make_integration())
    second = install(make_integration())

    assert second.created == []
    assert sorted(second.existing) == sorted(OUR_FIELDS)
    assert second.data["fields"] == first.data["fields"]
    assert len(fake.custom_field_names()) == len(OUR_FIELDS) + 1


def test_fields_on_later_pages_are_found_and_reused(
    fake: FakeSplio, server: FakeServer, make_integration
) -> None:
    for n in range(230):
        fake.add_field(f"shop_field_{n}")
    tier = fake.add_field("ellity_tier", "text")  # listed on the third page of 100

    result = install(make_integration())

    assert result.existing == ["ellity_tier"]
    assert result.data["fields"]["ellity_tier"] == tier["id"]
    pages = {r.query["page_number"] for r in server.requests_to("GET", "/data/fields/contacts")}
    assert pages == {"1", "2", "3"}
    assert fake.custom_field_names().count("ellity_tier") == 1


def test_the_prefix_is_the_integrations(fake: FakeSplio, make_integration) -> None:
    result = install(make_integration(prefix="mehub_"))
    assert "mehub_points_balance" in result.created
    assert "mehub_points_balance" in fake.custom_field_names()


def test_a_universe_keyed_by_cellphone_is_refused_before_creating_fields(
    fake: FakeSplio, make_integration
) -> None:
    fake.unique_key = "cellphone"
    with pytest.raises(ConfigurationError, match="e-mail"):
        install(make_integration())
    assert fake.custom_field_names() == ["civility"]
