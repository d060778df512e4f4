"""Install: credentials, region discovery, address book choice, data fields."""

from __future__ import annotations

import pytest
from pointbridge_dotmailer import PLATFORM, install, push_contact
from pointbridge_dotmailer.fake import DotdigitalState, create_app

from pointbridge import AuthError, ChoiceRequired, PermanentError
from pointbridge.plugins import PluginHost
from pointbridge.testing import FakeServer

EXPECTED = {
    "ELLITY_POINTS": "Numeric",
    "ELLITY_REFERRAL_URL": "String",
    "ELLITY_STATE": "String",
    "ELLITY_TIER_NAME": "String",
    "ELLITY_TIER_ID": "String",
    "ELLITY_LIFETIME_PTS": "Numeric",
    "ELLITY_TIER_EXPIRES": "Date",
    "ELLITY_TO_NEXT_TIER": "Numeric",
}


def test_plugin_is_discovered_without_events_or_webhooks() -> None:
    platform = PluginHost().platform("dotmailer")
    assert platform.title == "Dotdigital (dotmailer)"
    assert platform.capabilities == frozenset()
    assert (platform.rate_limit.calls, platform.rate_limit.per_seconds) == (35, 60.0)
    assert PLATFORM.secret_settings() == {"password"}


def test_bad_credentials_raise_a_clear_auth_error_and_create_nothing(
    make_integration, dd_state, dd_server
) -> None:
    before = dict(dd_state.data_fields)
    with pytest.raises(AuthError) as caught:
        install(make_integration(password="wrong-password-123"))
    message = str(caught.value)
    assert "check the API user's e-mail and password" in message
    assert "Settings → Access → API users" in message
    assert "wrong-password-123" not in message
    assert dd_state.data_fields == before
    assert not dd_server.requests_to("POST", "/v2/data-fields")


def test_install_creates_the_loyalty_data_fields(make_integration, dd_state, dd_server) -> None:
    result = install(make_integration())
    assert sorted(result.created) == sorted(EXPECTED)
    assert result.existing == []
    for name, type_ in EXPECTED.items():
        assert dd_state.data_fields[name]["type"] == type_
    assert result.data["api_endpoint"] == dd_server.url + "/"
    assert result.data["address_book_id"] == 7
    assert result.data["name_fields"] == ["FIRSTNAME", "LASTNAME"]
    assert "Customers" in result.message
    # Every call authenticated with Basic.
    assert all(r.headers.get("Authorization", "").startswith("Basic ") for r in dd_server.requests)


def test_second_install_reuses_every_field(make_integration, dd_state, dd_server) -> None:
    install(make_integration())
    posts = len(dd_server.requests_to("POST", "/v2/data-fields"))
    again = install(make_integration())
    assert again.created == []
    assert sorted(again.existing) == sorted(EXPECTED)
    assert len(dd_server.requests_to("POST", "/v2/data-fields")) == posts
    assert len([n for n in dd_state.data_fields if n.startswith("ELLITY_")]) == len(EXPECTED)


def test_field_that_appears_meanwhile_counts_as_existing(
    make_integration, dd_state, monkeypatch
) -> None:
    # Another installer created the fields between our listing and our create: Dotdigital
    # answers ERROR_NON_UNIQUE_DATAFIELD, which is not a failure.
    install(make_integration())
    from pointbridge_dotmailer.client import DotdigitalClient

    monkeypatch.setattr(DotdigitalClient, "data_fields", lambda self: [])
    result = install(make_integration())
    assert result.created == []
    assert sorted(result.existing) == sorted(EXPECTED)


def test_legacy_prefix_names(make_integration, dd_state) -> None:
    result = install(make_integration(prefix="mehub_"))
    assert "MEHUB_REFERRAL_URL" in result.created
    assert {"MEHUB_LIFETIME_PTS", "MEHUB_TIER_EXPIRES", "MEHUB_TO_NEXT_TIER"} <= set(result.created)
    assert "MEHUB_POINTS" in dd_state.data_fields


@pytest.mark.parametrize(
    ("prefix", "hint"),
    [("loyaltyprog_", "Shorten the integration's field prefix to at most 8"), ("ell.", "letters")],
)
def test_unusable_prefix_is_reported_before_any_call(
    make_integration, dd_server, prefix, hint
) -> None:
    with pytest.raises(PermanentError) as caught:
        install(make_integration(prefix=prefix))
    assert hint in str(caught.value)
    assert dd_server.requests == []


def test_empty_address_book_lists_every_book_to_choose_from(
    dd_server, dd_state, make_integration
) -> None:
    state = dd_state
    for n in range(1100):  # more than one page of 1000
        state.add_address_book(f"Book {n}")
    with pytest.raises(ChoiceRequired) as caught:
        install(make_integration(address_book_id=""))
    choice = caught.value
    assert choice.setting == "address_book_id"
    assert len(choice.options) == 1102
    assert ("7", "Customers (0 contacts)") in choice.options
    assert "all of the shop's customers" in str(choice)
    skips = [r.query["skip"] for r in dd_server.requests_to("GET", "/v2/address-books")]
    assert skips == ["0", "1000", "1102"]
    assert not dd_server.requests_to("POST", "/v2/data-fields")


def test_deleted_address_book_asks_for_another(make_integration) -> None:
    with pytest.raises(ChoiceRequired) as caught:
        install(make_integration(address_book_id="999"))
    assert "no address book 999" in str(caught.value)
    assert [value for value, _ in caught.value.options] == ["7", "8"]


def test_account_in_another_region_is_used_after_discovery(make_integration, make_contact):
    state = DotdigitalState(address_books={7: "Customers"})
    with (
        FakeServer(create_app(state, home=False)) as r1,
        FakeServer(create_app(state)) as r2,
    ):
        state.api_endpoint = r2.url + "/"
        result = install(make_integration(url=r1.url))
        assert result.data["api_endpoint"] == r2.url + "/"
        assert [r.path for r in r1.requests] == ["/v2/account-info"]
        assert r2.requests_to("POST", "/v2/data-fields")

        # Without the endpoint in data (an integration installed by an older version), it is
        # looked up once and kept.
        integration = make_integration(url=r1.url)
        push_contact(integration, [make_contact(1)])
        push_contact(integration, [make_contact(2)])
        assert [r.path for r in r1.requests].count("/v2/account-info") == 2
        assert set(state.contacts) == {"customer1@example.com", "customer2@example.com"}


def test_wrong_region_is_refused_like_dotdigital(make_integration, make_contact) -> None:
    state = DotdigitalState(address_books={7: "Customers"})
    with FakeServer(create_app(state, home=False)) as r1:
        integration = make_integration(url=r1.url, data={"api_endpoint": r1.url + "/"})
        with pytest.raises(AuthError) as caught:
            push_contact(integration, [make_contact(1)])
        assert "HTTP 403" in str(caught.value)
        assert state.contacts == {}


def test_a_field_of_another_type_is_reused_and_the_admin_told(
    make_integration, dd_state, dd_server
) -> None:
    # Made by hand before install, and Dotdigital compares names case-insensitively.
    dd_state.data_fields["ELLITY_POINTS"] = {"name": "Ellity_Points", "type": "String"}
    result = install(make_integration())
    assert "ELLITY_POINTS" in result.existing and "ELLITY_POINTS" not in result.created
    assert "Ellity_Points exists as String, but pointbridge writes Numeric" in result.message
    assert len(dd_server.requests_to("POST", "/v2/data-fields")) == len(EXPECTED) - 1
