"""push_contact: new contacts in bulk, existing ones PATCHed one by one, failures per item."""

from __future__ import annotations

import pytest
from pointbridge_splio import PLATFORM, install, push_contact
from pointbridge_splio.client import client_for, contact_path
from pointbridge_splio.fake import FakeSplio, rate_limit_rules, serve
from pointbridge_splio.sync import _update_each

from pointbridge import (
    ConfigurationError,
    Integration,
    PermanentError,
    RateLimited,
    TransientError,
    ratelimit,
)
from pointbridge.ratelimit import Pacer, pacer_for
from pointbridge.testing import FakeServer, Faults


def test_new_contacts_get_their_loyalty_values_in_one_bulk_call(
    fake: FakeSplio, server: FakeServer, installed: Integration, make_contact
) -> None:
    failures = push_contact(
        installed,
        [
            make_contact(
                1,
                "jana@example.cz",
                points=120,
                tier="Gold",
                missions=3,
                rewards=2,
                referrals=1,
                first_name="Jana",
            ),
            make_contact(2, "petr@example.cz", points=0),
        ],
    )

    assert failures == []
    assert fake.values("jana@example.cz") == {
        "ellity_points_balance": "120",
        "ellity_missions_count": "3",
        "ellity_rewards_count": "2",
        "ellity_referrals_count": "1",
        "ellity_tier": "Gold",
    }
    assert fake.contacts["jana@example.cz"]["firstname"] == "Jana"
    assert fake.values("petr@example.cz")["ellity_points_balance"] == "0"
    assert "ellity_tier" not in fake.values("petr@example.cz")  # no tier, nothing to store
    assert len(server.requests_to("POST", "/data/contacts/bulk")) == 1
    assert [r for r in server.requests if r.method == "PATCH"] == []
    # Nothing the shop manages in Splio is sent: no lists, no double opt-in.
    sent = server.requests_to("POST", "/data/contacts/bulk")[0].json()["contacts"][0]
    assert set(sent) == {"email", "firstname", "custom_fields"}


def test_existing_contacts_are_updated_and_keep_their_lists_and_names(
    fake: FakeSplio, server: FakeServer, installed: Integration, make_contact
) -> None:
    newsletter = fake.add_list("newsletter")
    vip = fake.add_list("vip")
    fake.add_contact(
        "eva@example.cz",
        {"ellity_points_balance": "10", "civility": "mrs"},
        lists=[newsletter, vip],
    )
    fake.contacts["eva@example.cz"]["firstname"] = "Eva"

    failures = push_contact(
        installed, [make_contact(7, "Eva@Example.cz", points=55, first_name="Someone Else")]
    )

    assert failures == []
    values = fake.values("eva@example.cz")
    assert values["ellity_points_balance"] == "55"
    assert values["civility"] == "mrs"
    assert fake.contacts["eva@example.cz"]["lists"] == [newsletter, vip]
    assert fake.contacts["eva@example.cz"]["firstname"] == "Eva"
    (patch,) = [r for r in server.requests if r.method == "PATCH"]
    assert set(patch.json()) == {"custom_fields"}


def test_the_tier_follows_the_customer_and_is_cleared_when_they_leave_it(
    fake: FakeSplio, installed: Integration, make_contact
) -> None:
    push_contact(installed, [make_contact(3, "olga@example.cz", tier="Gold")])
    assert fake.values("olga@example.cz")["ellity_tier"] == "Gold"

    push_contact(installed, [make_contact(3, "olga@example.cz", tier="Silver")])
    assert fake.values("olga@example.cz")["ellity_tier"] == "Silver"

    push_contact(installed, [make_contact(3, "olga@example.cz", tier=None)])
    assert fake.values("olga@example.cz")["ellity_tier"] == ""


def test_without_install_data_fields_are_addressed_by_name(
    fake: FakeSplio, server: FakeServer, installed: Integration, make_integration, make_contact
) -> None:
    bare = make_integration()  # e.g. data lost: the names still reach the right fields
    assert push_contact(bare, [make_contact(4, "ida@example.cz", points=9)]) == []
    assert fake.values("ida@example.cz")["ellity_points_balance"] == "9"
    sent = server.requests_to("POST", "/data/contacts/bulk")[-1].json()["contacts"][0]
    assert {"name": "ellity_points_balance", "value": "9"} in sent["custom_fields"]


def test_a_mixed_batch_reports_only_what_failed(
    fake: FakeSplio, installed: Integration, make_contact
) -> None:
    fake.add_contact("old@example.cz")
    failures = push_contact(
        installed,
        [
            make_contact(1, "new@example.cz", points=1),
            make_contact(2, "old@example.cz", points=2),
            make_contact(3, "", points=3),
        ],
    )
    assert [(f.key, type(f.error)) for f in failures] == [(3, PermanentError)]
    assert "e-mail" in str(failures[0].error)
    assert fake.values("new@example.cz")["ellity_points_balance"] == "1"
    assert fake.values("old@example.cz")["ellity_points_balance"] == "2"


def test_a_contact_splio_refuses_fails_alone(
    fake: FakeSplio, installed: Integration, make_contact
) -> None:
    failures = push_contact(
        installed, [make_contact(1, "ok@example.cz"), make_contact(2, "not-an-address")]
    )
    assert [(f.key, type(f.error)) for f in failures] == [(2, PermanentError)]
    assert "Invalid email" in str(failures[0].error)
    assert "ok@example.cz" in fake.contacts


@pytest.mark.parametrize("existing", [False, True], ids=["new contact", "existing contact"])
def test_a_retyped_field_pauses_the_integration_instead_of_failing_every_contact(
    fake: FakeSplio, installed: Integration, make_contact, existing: bool
) -> None:
    if existing:
        fake.add_contact("eva@example.cz", {"ellity_points_balance": "10"})
    # An admin turned the points field into a date in Splio's UI.
    fake.field_by_name("ellity_points_balance")["data_type"] = "date"

    with pytest.raises(ConfigurationError, match="reinstall the integration"):
        push_contact(installed, [make_contact(1, "eva@example.cz", points=5)])

    if existing:
        assert fake.values("eva@example.cz")["ellity_points_balance"] == "10"
    else:
        assert "eva@example.cz" not in fake.contacts


def test_more_than_a_bulk_is_split_at_1000(
    fake: FakeSplio, server: FakeServer, installed: Integration, make_contact
) -> None:
    contacts = [make_contact(i, f"c{i}@example.cz", points=i) for i in range(1001)]
    assert push_contact(installed, contacts) == []
    sizes = [len(r.json()["contacts"]) for r in server.requests_to("POST", "/data/contacts/bulk")]
    assert sizes == [1000, 1]
    assert fake.values("c1000@example.cz")["ellity_points_balance"] == "1000"


def test_the_fake_refuses_more_than_1000_like_splio(
    server: FakeServer, installed: Integration
) -> None:
    client = client_for(installed)
    response = client.request(
        "POST",
        "data/contacts/bulk",
        json={"contacts": [{"email": f"x{i}@example.cz"} for i in range(1001)]},
        passthrough=(400,),
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["error"] == "too_many_elements"


def test_updates_are_paced_under_splios_20_per_second(
    fake: FakeSplio, server: FakeServer, installed: Integration, make_contact
) -> None:
    for i in range(30):
        fake.add_contact(f"old{i}@example.cz")

    failures = push_contact(
        installed, [make_contact(i, f"old{i}@example.cz", points=i) for i in range(30)]
    )

    assert failures == []
    # 31 requests on data/contacts (a bulk, 30 PATCHes) at loopback speed would meet the
    # fake's 20/s; paced, none is refused.
    contacts = [r for r in server.requests if r.path.startswith("/data/contacts")]
    assert len(contacts) == 31
    assert [r for r in server.requests if r.status == 429] == []
    assert fake.values("old29@example.cz")["ellity_points_balance"] == "29"


class _CountingPacer(Pacer):
    """The integration's pacer, counting the requests that took a slot, without sleeping."""

    def __init__(self) -> None:
        super().__init__(PLATFORM.rate_limit, sleep=lambda seconds: None)
        self.requests = 0

    def request(self) -> None:
        self.requests += 1
        super().request()


def test_contact_requests_take_the_integrations_shared_budget_and_install_does_not(
    fake: FakeSplio, make_integration, make_contact, monkeypatch: pytest.MonkeyPatch
) -> None:
    integration = make_integration(integration_id=9001)
    pacer = _CountingPacer()
    # The budget the host paces this integration's hook calls with.
    monkeypatch.setitem(ratelimit._pacers, integration.id, pacer)
    assert pacer_for(integration.id, PLATFORM.rate_limit) is pacer

    result = install(integration)
    # Authentication, unique key and fields are counted by Splio apart from contacts.
    assert pacer.requests == 0
    assert client_for(integration).pacer is pacer

    fake.add_contact("old@example.cz")
    installed = make_integration(data=dict(result.data), integration_id=integration.id)
    push_contact(installed, [make_contact(1, "new@example.cz"), make_contact(2, "old@example.cz")])
    assert pacer.requests == 2  # the bulk create and the one PATCH


def test_a_429_midway_hands_back_only_the_contacts_not_yet_updated(
    make_integration, make_contact
) -> None:
    fake = FakeSplio(api_keys={"k"})
    # Someone else on this IP already uses most of the budget: 5/s left for us.
    with serve(fake, rate_limits=rate_limit_rules(contacts_per_second=5)) as server:
        integration = make_integration(api_key="k", url=server.url)
        install(integration)
        for i in range(8):
            fake.add_contact(f"old{i}@example.cz")

        failures = push_contact(
            integration, [make_contact(i, f"old{i}@example.cz", points=100 + i) for i in range(8)]
        )

    patches = [r for r in server.requests if r.method == "PATCH"]
    assert [r.status for r in patches] == [200, 200, 200, 200, 429]  # stops at the first 429
    assert [f.key for f in failures] == [4, 5, 6, 7]
    assert all(isinstance(f.error, TransientError) for f in failures)
    assert "retry in 1 s" in str(failures[0].error)
    assert fake.values("old3@example.cz")["ellity_points_balance"] == "103"
    assert "ellity_points_balance" not in fake.values("old4@example.cz")


def test_a_throttled_bulk_call_raises_rate_limited_with_splios_reset(
    make_integration, make_contact
) -> None:
    fake = FakeSplio(api_keys={"k"})
    with serve(fake, rate_limits=rate_limit_rules(contacts_per_second=1)) as server:
        integration = make_integration(api_key="k", url=server.url)
        install(integration)
        push_contact(integration, [make_contact(1, "a@example.cz")])
        with pytest.raises(RateLimited) as raised:
            push_contact(integration, [make_contact(2, "b@example.cz")])
    assert raised.value.retry_after == 1.0
    throttled = [r for r in server.requests if r.status == 429]
    assert len(throttled) == 1


def test_a_failing_platform_is_a_transient_error(
    server: FakeServer, installed: Integration, make_contact
) -> None:
    client_for(installed).token()
    server.faults = Faults(rate=1.0, kinds=("503",))
    with pytest.raises(TransientError):
        push_contact(installed, [make_contact(1, "a@example.cz")])


def test_updates_stop_after_three_failures_in_a_row(
    fake: FakeSplio, server: FakeServer, installed: Integration, make_contact
) -> None:
    contacts = [make_contact(i, f"old{i}@example.cz") for i in range(6)]
    for c in contacts:
        fake.add_contact(c.email)
    client = client_for(installed)
    client.token()
    server.faults = Faults(rate=1.0, kinds=("500",))

    failures = _update_each(client, contacts, "ellity_", installed.data["fields"])

    assert [f.key for f in failures] == [0, 1, 2, 3, 4, 5]
    assert all(isinstance(f.error, TransientError) for f in failures)
    assert len([r for r in server.requests if r.method == "PATCH"]) == 3


def test_a_contact_gone_before_its_update_is_retried_not_dropped(
    installed: Integration, make_contact
) -> None:
    client = client_for(installed)
    failures = _update_each(
        client, [make_contact(9, "gone@example.cz")], "ellity_", installed.data["fields"]
    )
    assert [(f.key, type(f.error)) for f in failures] == [(9, TransientError)]
    assert "Contact not found" in str(failures[0].error)


def test_addresses_with_plus_and_slash_reach_the_right_contact(
    fake: FakeSplio, server: FakeServer, installed: Integration, make_contact
) -> None:
    fake.add_contact("jan+vip/shop@example.cz")
    assert push_contact(installed, [make_contact(1, "jan+vip/shop@example.cz", points=8)]) == []
    assert fake.values("jan+vip/shop@example.cz")["ellity_points_balance"] == "8"
    (patch,) = [r for r in server.requests if r.method == "PATCH"]
    assert patch.path == "/data/contacts/jan+vip/shop@example.cz"
    # A raw "+" would read as a space and a raw "/" as another path segment.
    assert contact_path("jan+vip/shop@example.cz") == "data/contacts/jan%2Bvip%2Fshop@example.cz"


def test_pushing_before_install_pauses_with_a_clear_message(
    fake: FakeSplio, make_integration, make_contact
) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        push_contact(make_integration(), [make_contact(1, "a@example.cz")])
    assert fake.contacts == {}
