"""push_contact: new contacts in bulk, known ones PATCHed once each, failures per item."""

from __future__ import annotations

from datetime import date

import pytest
from pointbridge_splio import install, push_contact
from pointbridge_splio.client import OFF_CONTACTS, SplioClient, contact_path
from pointbridge_splio.fake import FakeSplio

from pointbridge import ConfigurationError, Integration, PermanentError, RateLimited, TransientError
from pointbridge.kit.ratelimit import SAFETY
from pointbridge.testing import FakeServer
from pointbridge.testing.contacts import sample_contact
from pointbridge.testing.pacing import RecordingPacers


def _patches(server: FakeServer) -> list[str]:
    return [r.path for r in server.requests if r.method == "PATCH"]


def _bulks(server: FakeServer) -> int:
    return len(server.requests_to("POST", "/data/contacts/bulk"))


def test_new_contacts_get_their_loyalty_values_in_one_bulk_call(
    fake: FakeSplio, server: FakeServer, installed: Integration
) -> None:
    jana = sample_contact(
        1,
        "jana@example.cz",
        points=120,
        tier_name="Gold",
        missions=3,
        rewards=2,
        referrals=1,
        lifetime_points=150,
        points_to_next_tier=80,
        tier_expires_at=date(2027, 1, 31),
    )
    petr = sample_contact(2, "petr@example.cz", points=0, first_name=None, last_name=None)
    assert push_contact(installed, [jana, petr]) == []

    assert fake.values("jana@example.cz") == {
        "ellity_points_balance": "120",
        "ellity_missions_count": "3",
        "ellity_rewards_count": "2",
        "ellity_referrals_count": "1",
        "ellity_tier": "Gold",
        "ellity_lifetime_points": "150",
        "ellity_points_to_next_tier": "80",
        "ellity_tier_expires_at": "2027-01-31 00:00:00",  # a date value as Splio documents it
    }
    assert fake.contacts["jana@example.cz"]["firstname"] == "Jan"
    assert fake.values("petr@example.cz")["ellity_points_balance"] == "0"
    assert "ellity_tier" not in fake.values("petr@example.cz")  # no tier, nothing to store
    assert _bulks(server) == 1
    assert _patches(server) == []
    # Nothing the shop manages in Splio is sent: no lists, no double opt-in.
    sent = server.requests_to("POST", "/data/contacts/bulk")[0].json()["contacts"]
    assert set(sent[0]) == {"email", "firstname", "lastname", "custom_fields"}
    assert set(sent[1]) == {"email", "custom_fields"}


def test_existing_contacts_are_updated_and_keep_their_lists_and_names(
    fake: FakeSplio, server: FakeServer, installed: Integration
) -> None:
    newsletter, vip = fake.add_list("newsletter"), fake.add_list("vip")
    fake.add_contact(
        "eva@example.cz", {"ellity_points_balance": "10", "civility": "mrs"}, [newsletter, vip]
    )["firstname"] = "Eva"

    eva = sample_contact(7, "eva@example.cz", points=55, first_name="Someone Else")
    assert push_contact(installed, [eva]) == []

    values = fake.values("eva@example.cz")
    assert values["ellity_points_balance"] == "55"
    assert values["civility"] == "mrs"
    assert fake.contacts["eva@example.cz"]["lists"] == [newsletter, vip]
    assert fake.contacts["eva@example.cz"]["firstname"] == "Eva"
    (patch,) = [r for r in server.requests if r.method == "PATCH"]
    assert set(patch.json()) == {"custom_fields"}


def test_a_contact_splio_has_is_updated_with_one_call_from_then_on(
    fake: FakeSplio, server: FakeServer, installed: Integration
) -> None:
    fake.add_contact("old@example.cz")
    contacts = [sample_contact(1, "old@example.cz"), sample_contact(2, "new@example.cz")]
    push_contact(installed, contacts)  # learns that Splio has both: a conflict, a create
    server.clear()

    updated = [sample_contact(c.customer_id, c.email, points=7) for c in contacts]
    assert push_contact(installed, updated) == []

    assert _bulks(server) == 0
    assert _patches(server) == ["/data/contacts/old@example.cz", "/data/contacts/new@example.cz"]
    assert fake.values("new@example.cz")["ellity_points_balance"] == "7"


def test_a_contact_deleted_in_splio_is_created_again(
    fake: FakeSplio, server: FakeServer, installed: Integration
) -> None:
    push_contact(installed, [sample_contact(1, "gone@example.cz")])
    del fake.contacts["gone@example.cz"]  # an admin deleted it in Splio
    server.clear()

    assert push_contact(installed, [sample_contact(1, "gone@example.cz", points=9)]) == []

    assert [r.status for r in server.requests] == [404, 207]
    assert fake.values("gone@example.cz")["ellity_points_balance"] == "9"


def test_the_tier_follows_the_customer_and_is_cleared_when_they_leave_it(
    fake: FakeSplio, installed: Integration
) -> None:
    for tier in ("Gold", "Silver", None):
        push_contact(installed, [sample_contact(3, "olga@example.cz", tier_name=tier)])
        assert fake.values("olga@example.cz").get("ellity_tier") == (tier or "")


def test_without_install_data_fields_are_addressed_by_name(
    fake: FakeSplio, server: FakeServer, installed: Integration, make_integration
) -> None:
    bare = make_integration()  # e.g. data lost: the names still reach the right fields
    assert push_contact(bare, [sample_contact(4, "ida@example.cz", points=9)]) == []
    assert fake.values("ida@example.cz")["ellity_points_balance"] == "9"
    sent = server.requests_to("POST", "/data/contacts/bulk")[-1].json()["contacts"][0]
    assert {"name": "ellity_points_balance", "value": "9"} in sent["custom_fields"]


def test_a_contact_splio_refuses_fails_alone(fake: FakeSplio, installed: Integration) -> None:
    fake.add_contact("old@example.cz")
    contacts = [
        sample_contact(1, "new@example.cz", points=1),
        sample_contact(2, "old@example.cz", points=2),
        sample_contact(3, "not-an-address", points=3),
    ]
    failures = push_contact(installed, contacts)
    assert [(f.key, type(f.error)) for f in failures] == [(3, PermanentError)]
    assert "Invalid email" in str(failures[0].error)
    assert fake.values("new@example.cz")["ellity_points_balance"] == "1"
    assert fake.values("old@example.cz")["ellity_points_balance"] == "2"


@pytest.mark.parametrize("existing", [False, True], ids=["new contact", "existing contact"])
def test_a_retyped_field_pauses_the_integration_instead_of_failing_every_contact(
    fake: FakeSplio, installed: Integration, existing: bool
) -> None:
    if existing:
        fake.add_contact("eva@example.cz", {"ellity_points_balance": "10"})
    # An admin turned the points field into a date in Splio's UI.
    fake.field_by_name("ellity_points_balance")["data_type"] = "date"

    with pytest.raises(ConfigurationError, match="reinstall the integration"):
        push_contact(installed, [sample_contact(1, "eva@example.cz", points=5)])

    if existing:
        assert fake.values("eva@example.cz")["ellity_points_balance"] == "10"
    else:
        assert "eva@example.cz" not in fake.contacts


def test_the_tier_end_is_cleared_when_the_shop_sends_none(
    fake: FakeSplio, installed: Integration
) -> None:
    push_contact(
        installed, [sample_contact(3, "olga@example.cz", tier_expires_at=date(2027, 1, 31))]
    )
    push_contact(installed, [sample_contact(3, "olga@example.cz")])  # an update: sent empty
    assert fake.values("olga@example.cz")["ellity_tier_expires_at"] == ""


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("2027-01-31 00:00:00", 200),
        ("2027-01-31 23:59:59", 200),
        ("", 200),  # assumed to clear it, as for any field
        ("2027-01-31", 400),
        ("2027-01-31T00:00:00", 400),
        ("31.01.2027 00:00:00", 400),
        ("2027-02-30 00:00:00", 400),
        (20270131, 400),
    ],
)
def test_the_fake_takes_a_date_field_value_as_splio_documents_it(
    fake: FakeSplio, installed: Integration, value: object, status: int
) -> None:
    fake.add_contact("eva@example.cz")
    response = SplioClient(installed).request(
        "PATCH",
        contact_path("eva@example.cz"),
        json={"custom_fields": [{"name": "ellity_tier_expires_at", "value": value}]},
        passthrough=(400,),
    )
    assert response.status_code == status
    if status == 400:
        assert response.json()["errors"][0]["error"] == "wrong_type"
        assert "ellity_tier_expires_at" not in fake.values("eva@example.cz")


def test_more_than_a_bulk_is_split_at_1000(
    fake: FakeSplio, server: FakeServer, installed: Integration
) -> None:
    contacts = [sample_contact(i, f"c{i}@example.cz", points=i) for i in range(1001)]
    assert push_contact(installed, contacts) == []
    sizes = [len(r.json()["contacts"]) for r in server.requests_to("POST", "/data/contacts/bulk")]
    assert sizes == [1000, 1]
    assert fake.values("c1000@example.cz")["ellity_points_balance"] == "1000"


def test_the_fake_refuses_more_than_1000_like_splio(installed: Integration) -> None:
    response = SplioClient(installed).request(
        "POST",
        "data/contacts/bulk",
        json={"contacts": [{"email": f"x{i}@example.cz"} for i in range(1001)]},
        passthrough=(400,),
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["error"] == "too_many_elements"


def _known(installed: Integration, count: int) -> list:
    """``count`` contacts Splio has and the integration knows it has."""
    contacts = [sample_contact(i, f"old{i}@example.cz", points=i) for i in range(count)]
    assert push_contact(installed, contacts) == []
    return [sample_contact(c.customer_id, c.email, points=100 + i) for i, c in enumerate(contacts)]


def test_contact_calls_share_the_integrations_20_per_second_and_the_rest_keep_to_10(
    server: FakeServer, make_integration, pacing: RecordingPacers
) -> None:
    fresh = make_integration()
    install(fresh)
    others, contacts = pacing.named[fresh.id, OFF_CONTACTS], pacing.made[fresh.id]
    # Authentication, unique key, fields: 10/s of their own, which Splio counts apart from the
    # 20/s of contacts; the first waits for nothing.
    assert len(others.waits) == len(server.requests) - 1
    assert others.waits[-1] - others.waits[-2] == pytest.approx(1 / (10 * SAFETY))
    assert contacts.waits == []

    before = len(others.waits)
    push_contact(fresh, [sample_contact(i, f"c{i}@example.cz") for i in range(3)])
    push_contact(fresh, [sample_contact(i, f"c{i}@example.cz", points=i) for i in range(3)])
    assert len(others.waits) == before  # a bulk and three PATCHes: contacts only
    assert contacts.waits[-1] - contacts.waits[-2] == pytest.approx(1 / (20 * SAFETY))


def test_a_429_midway_costs_the_untried_contacts_no_attempt(
    fake: FakeSplio, server: FakeServer, installed: Integration
) -> None:
    contacts = _known(installed, 8)
    server.clear()
    # Someone else on this IP used the budget up: the fourth update meets Splio's 429.
    server.fail_next(1, "429", path="/data/contacts/old3@example.cz", retry_after=2)

    failures = push_contact(installed, contacts)

    assert [r.status for r in server.requests] == [200, 200, 200, 429]  # stops at the 429
    assert [f.key for f in failures] == [3, 4, 5, 6, 7]
    assert all(isinstance(f.error, RateLimited) for f in failures)
    assert {f.error.retry_after for f in failures} == {2.0}  # from RateLimit-Reset
    assert fake.values("old2@example.cz")["ellity_points_balance"] == "102"
    assert fake.values("old3@example.cz")["ellity_points_balance"] == "3"


def test_a_throttled_bulk_call_raises_rate_limited_with_splios_reset(
    server: FakeServer, installed: Integration
) -> None:
    server.fail_next(1, "429", path="/data/contacts/bulk", retry_after=1)
    with pytest.raises(RateLimited) as raised:
        push_contact(installed, [sample_contact(1, "a@example.cz")])
    assert raised.value.retry_after == 1.0


def test_a_failing_bulk_call_is_a_transient_error(
    server: FakeServer, installed: Integration
) -> None:
    server.fail_next(1, "503", path="/data/contacts/bulk")
    with pytest.raises(TransientError):
        push_contact(installed, [sample_contact(1, "a@example.cz")])


def test_updates_stop_after_three_failures_in_a_row(
    server: FakeServer, installed: Integration
) -> None:
    contacts = _known(installed, 6)
    server.clear()
    server.fail_next(3, "500")

    failures = push_contact(installed, contacts)

    assert [f.key for f in failures] == [0, 1, 2, 3, 4, 5]
    assert all(isinstance(f.error, TransientError) for f in failures[:3])
    # The rest were never tried: they wait with the integration, costing no attempt.
    assert all(isinstance(f.error, RateLimited) for f in failures[3:])
    assert len(_patches(server)) == 3


def test_addresses_with_plus_and_slash_reach_the_right_contact(
    fake: FakeSplio, server: FakeServer, installed: Integration
) -> None:
    fake.add_contact("jan+vip/shop@example.cz")
    jan = sample_contact(1, "jan+vip/shop@example.cz", points=8)
    assert push_contact(installed, [jan]) == []
    assert fake.values("jan+vip/shop@example.cz")["ellity_points_balance"] == "8"
    assert _patches(server) == ["/data/contacts/jan+vip/shop@example.cz"]
    # A raw "+" would read as a space and a raw "/" as another path segment.
    assert contact_path("jan+vip/shop@example.cz") == "data/contacts/jan%2Bvip%2Fshop@example.cz"


def test_pushing_before_install_pauses_with_a_clear_message(
    fake: FakeSplio, make_integration
) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        push_contact(make_integration(), [sample_contact(1, "a@example.cz")])
    assert fake.contacts == {}


def test_the_unique_key_is_matched_as_sent(fake: FakeSplio, installed: Integration) -> None:
    fake.add_contact("Eva@Example.cz")  # made by another source, not lower-cased
    assert push_contact(installed, [sample_contact(1, "eva@example.cz", points=5)]) == []
    # Splio documents no case folding of its key (its Datahub wants e-mails lower-cased): the
    # fake folds nothing, and the address the host sent is the contact that was written.
    assert fake.values("eva@example.cz")["ellity_points_balance"] == "5"
    assert "ellity_points_balance" not in fake.values("Eva@Example.cz")
