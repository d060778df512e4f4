from __future__ import annotations

import pointbridge_ecomail as plugin
import pytest
from pointbridge_ecomail.fake import UNSUBSCRIBED, FakeEcomail

from pointbridge import AuthError, ConfigurationError, PermanentError, RateLimited, TransientError
from pointbridge.testing import FakeServer


def test_contact_lands_with_every_loyalty_field_typed(
    account: FakeEcomail, server: FakeServer, integration, make_contact
):
    agreed = make_contact(1, email="Jan@Example.cz ", marketing_consent=True)
    assert plugin.push_contact(integration, [agreed]) == []
    stored = account.contacts["jan@example.cz"]
    assert stored["name"] == "Jan"
    assert stored["surname"] == "Novák"
    assert stored["custom_fields"] == {
        "ellity_credit": "120",
        "ellity_credit_num": 120,
        "ellity_pin": "4321",
        "ellity_registered": "0",
        "ellity_next_expiration_date": "2026-12-31",
        "ellity_next_expiration_value": "40",
        "ellity_next_expiration_value_num": 40,
        "ellity_last_change_date": "2026-05-01",
        "ellity_last_change_value": "20",
        "ellity_referral_code": "JAN120",
        "ellity_referral_link": "https://shop.example/r/JAN120",
        "ellity_lifetime_points": 0,
        "ellity_tier_expires_at": None,
        "ellity_points_to_next_tier": None,
    }
    assert account.status("1", "jan@example.cz") == 1
    sent = server.requests_to("POST", "/lists/1/subscribe-bulk")[0].json()
    assert sent["subscriber_data"][0]["custom_fields"]["ellity_credit_num"] == {
        "value": 120,
        "type": "int",
    }


def test_flags_never_resubscribe_nor_start_automations_nor_confirmations(
    server: FakeServer, integration, make_contact
):
    plugin.push_contact(integration, [make_contact(1, marketing_consent=True)])
    body = server.requests_to("POST", "/lists/1/subscribe-bulk")[0].json()
    assert body["update_existing"] is True
    assert body["resubscribe"] is False
    assert body["trigger_autoresponders"] is False
    assert body["skip_confirmation"] is True


def test_unsubscribed_contact_gets_fields_but_stays_unsubscribed(
    account: FakeEcomail, integration, make_contact
):
    account.add_subscriber("1", "gone@example.cz", status=UNSUBSCRIBED, name="Eva")
    assert plugin.push_contact(integration, [make_contact(5, email="gone@example.cz")]) == []
    assert account.status("1", "gone@example.cz") == UNSUBSCRIBED
    assert account.contacts["gone@example.cz"]["custom_fields"]["ellity_credit"] == "120"


def test_unknown_names_do_not_blank_the_names_in_ecomail(
    account: FakeEcomail, integration, make_contact
):
    account.add_subscriber("1", "eva@example.cz", name="Eva", surname="Malá")
    plugin.push_contact(
        integration, [make_contact(3, email="eva@example.cz", first_name=None, last_name=None)]
    )
    assert account.contacts["eva@example.cz"]["name"] == "Eva"
    assert account.contacts["eva@example.cz"]["surname"] == "Malá"


def test_empty_values_clear_fields(account: FakeEcomail, integration, make_contact):
    unknown = ("pin", "next_expiration_date", "last_change_at", "last_change_points")
    empty = dict.fromkeys((*unknown, "referral_code", "referral_link"))
    bare = make_contact(9, registered=True, next_expiration_points=0, **empty)
    assert plugin.push_contact(integration, [bare]) == []
    fields = account.contacts["c9@example.cz"]["custom_fields"]
    assert fields["ellity_pin"] == ""
    assert fields["ellity_registered"] == "1"
    assert fields["ellity_next_expiration_date"] is None
    assert fields["ellity_last_change_value"] == ""


def test_never_more_than_3000_a_call_so_nobody_is_silently_dropped(
    account: FakeEcomail, server: FakeServer, integration, make_contact
):
    contacts = [make_contact(i, marketing_consent=True) for i in range(1, 3002)]
    assert plugin.push_contact(integration, contacts) == []
    calls = server.requests_to("POST", "/lists/1/subscribe-bulk")
    assert [len(c.json()["subscriber_data"]) for c in calls] == [3000, 1]
    assert len(account.lists["1"].members) == 3001


def test_one_address_ecomail_rejects_does_not_sink_the_batch(
    account: FakeEcomail, server: FakeServer, integration, make_contact
):
    # One address Ecomail refuses (no dot in the domain stands in for any): the call gets 422.
    contacts = [make_contact(i) for i in range(1, 9)]
    contacts[5] = make_contact(6, email="jan@localhost")
    failures = plugin.push_contact(integration, contacts)
    assert [f.key for f in failures] == [6]
    assert isinstance(failures[0].error, PermanentError)
    assert "valid email" in str(failures[0].error)
    assert len(account.lists["1"].members) == 7


def test_oversized_fields_fail_that_contact_only(account: FakeEcomail, integration, make_contact):
    huge = make_contact(2, referral_link="https://shop.example/r/" + "x" * 6000)
    failures = plugin.push_contact(integration, [make_contact(1), huge])
    assert [f.key for f in failures] == [2]
    assert "at most 5000" in str(failures[0].error)
    assert set(account.contacts) == {"c1@example.cz"}


def test_the_limit_counts_fields_as_json_characters(
    account: FakeEcomail, integration, make_contact
):
    # 4,000 characters are within the limit; 4,000 quotes are 8,000 once escaped in JSON.
    long_link = make_contact(1, referral_link="https://shop.example/r/" + "x" * 4000)
    quoted = make_contact(2, referral_link="https://shop.example/r/" + '"' * 4000)
    failures = plugin.push_contact(integration, [long_link, quoted])
    assert [f.key for f in failures] == [2]
    assert "at most 5000" in str(failures[0].error)
    assert set(account.contacts) == {"c1@example.cz"}


def test_missing_list_id_pauses_the_integration_instead_of_failing_the_contacts(
    server: FakeServer, make_integration, make_contact
):
    # A ConfigurationError: the host pauses the integration with this message and the rows
    # wait for an admin, where a PermanentError would dead-letter every contact.
    with pytest.raises(ConfigurationError, match="set list_id"):
        plugin.push_contact(make_integration(list_id=""), [make_contact(1)])
    assert server.requests == []


def test_bad_key_raises_auth_error(make_integration, make_contact):
    with pytest.raises(AuthError, match="Ecomail refused the API key"):
        plugin.push_contact(make_integration(api_key="revoked"), [make_contact(1)])


@pytest.mark.parametrize("fault", ["503", "drop"])
def test_a_server_error_or_dropped_connection_is_transient_and_stores_nothing(
    account: FakeEcomail, server: FakeServer, integration, make_contact, fault: str
):
    server.fail_next(1, fault)
    with pytest.raises(TransientError):
        plugin.push_contact(integration, [make_contact(1)])
    assert account.contacts == {}


def test_throttled_call_raises_rate_limited_with_ecomails_wait(
    account: FakeEcomail, server: FakeServer, integration, make_contact
):
    server.fail_next(1, "429", retry_after=60)
    with pytest.raises(RateLimited) as caught:
        plugin.push_contact(integration, [make_contact(2)])
    assert caught.value.retry_after == 60
    assert "c2@example.cz" not in account.contacts


def test_without_consent_only_a_new_subscriber_gets_a_status_and_it_is_unsubscribed(
    account: FakeEcomail, server: FakeServer, integration, make_contact
):
    account.add_subscriber("1", "fan@example.cz")
    quiet = [make_contact(1, email="new@example.cz"), make_contact(2, email="fan@example.cz")]
    assert plugin.push_contact(integration, quiet) == []
    first, upsert = (r.json() for r in server.requests_to("POST", "/lists/1/subscribe-bulk"))
    assert first["update_existing"] is False and first["resubscribe"] is False
    assert {s["status"] for s in first["subscriber_data"]} == {UNSUBSCRIBED}
    assert upsert["update_existing"] is True
    assert all("status" not in s for s in upsert["subscriber_data"])
    assert account.status("1", "new@example.cz") == UNSUBSCRIBED
    assert account.status("1", "fan@example.cz") == 1
    assert account.contacts["fan@example.cz"]["custom_fields"]["ellity_credit"] == "120"
