"""Registration, settings, CSV export, and the fake holding to Ecomail's documented rules."""

from __future__ import annotations

import pointbridge_ecomail as plugin
import requests
from pointbridge_ecomail.fake import FakeEcomail

from pointbridge import Capability
from pointbridge.plugins import PluginHost
from pointbridge.testing import FakeServer


def test_installed_plugin_registers_ecomail_with_its_limits():
    host = PluginHost(allowed={"ecomail"})
    platform = host.platform("ecomail")
    assert platform.title == "Ecomail"
    assert platform.capabilities == {
        Capability.EVENTS,
        Capability.WEBHOOKS,
        Capability.CSV_EXPORT,
    }
    assert platform.max_batch == 3000
    assert (platform.rate_limit.calls, platform.rate_limit.per_seconds) == (1000, 60)
    assert platform.secret_settings() == {"api_key"}


def test_settings_default_to_production_and_need_a_key():
    schema = plugin.PLATFORM.settings_schema()
    loaded = schema.load({"api_key": "k"})
    assert loaded["api_url"] == "https://api2.ecomailapp.cz/"
    assert loaded["list_id"] is None  # none chosen: install offers the account's lists
    assert schema.load({"api_key": "k", "list_id": ""})["list_id"] is None
    assert "list_id" in schema.validate({"api_key": "k", "list_id": "Newsletter"})
    assert "api_key" in schema.validate({})
    assert schema.validate({"api_key": "k", "api_url": "http://127.0.0.1:5000"}) == {}


def test_csv_row_has_the_email_and_every_prefixed_column(integration, make_contact):
    row = plugin.PLATFORM.csv_row(integration, make_contact(1))
    assert list(row) == [
        "email",
        "ellity_credit",
        "ellity_credit_num",
        "ellity_pin",
        "ellity_registered",
        "ellity_next_expiration_date",
        "ellity_next_expiration_value",
        "ellity_next_expiration_value_num",
        "ellity_last_change_date",
        "ellity_last_change_value",
        "ellity_referral_code",
        "ellity_referral_link",
        "ellity_lifetime_points",
        "ellity_tier_expires_at",
        "ellity_points_to_next_tier",
    ]
    assert row["email"] == "c1@example.cz"
    assert row["ellity_credit"] == "120"
    assert row["ellity_next_expiration_date"] == "2026-12-31"


def _bulk(server: FakeServer, body: dict, key: str) -> requests.Response:
    return requests.post(
        f"{server.url}/lists/1/subscribe-bulk", json=body, headers={"key": key}, timeout=10
    )


def test_fake_refuses_a_wrong_key_like_ecomail(account: FakeEcomail, server: FakeServer):
    response = requests.get(f"{server.url}/lists", headers={"key": "bad"}, timeout=10)
    assert response.status_code == 401
    assert requests.get(f"{server.url}/lists", timeout=10).status_code == 401


def test_fake_silently_ignores_subscribers_past_3000(account: FakeEcomail, server: FakeServer):
    data = [{"email": f"s{i}@example.cz"} for i in range(3005)]
    response = _bulk(server, {"subscriber_data": data}, account.api_key)
    assert response.status_code == 200
    assert response.json() == {"inserts": 3000}
    assert len(account.lists["1"].members) == 3000
    assert "s3004@example.cz" not in account.contacts


def test_fake_lowercases_field_keys_and_rejects_colliding_ones(
    account: FakeEcomail, server: FakeServer
):
    ok = _bulk(
        server,
        {"subscriber_data": [{"email": "a@example.cz", "custom_fields": {" Shop ": "x"}}]},
        account.api_key,
    )
    assert ok.status_code == 200
    assert account.contacts["a@example.cz"]["custom_fields"] == {"shop": "x"}
    clash = _bulk(
        server,
        {"subscriber_data": [{"email": "b@example.cz", "custom_fields": {"SHOP": 1, "shop": 2}}]},
        account.api_key,
    )
    assert clash.status_code == 422
    assert "b@example.cz" not in account.contacts
