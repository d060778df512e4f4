"""The whole host against a fake Splio over real HTTP: CLI, REST API, worker, export.

Throttling (a 429 naming no wait too), faults, the big export, the first activation and
corrected credentials are the stories every plugin passes (test_splio_contract.py); these are
Splio's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pointbridge_splio.client import BULK_MAX
from pointbridge_splio.fake import FakeSplio, serve

from pointbridge.testing import FakeServer
from pointbridge.testing.e2e import Pointbridge

KEY = "splio-e2e-key-0123456789"
NAME = "loyoly"
FIELDS = {
    "ellity_points_balance": "int",
    "ellity_missions_count": "int",
    "ellity_rewards_count": "int",
    "ellity_referrals_count": "int",
    "ellity_tier": "text",
    "ellity_lifetime_points": "int",
    "ellity_points_to_next_tier": "int",
    "ellity_tier_expires_at": "date",
}


@pytest.fixture
def universe() -> FakeSplio:
    return FakeSplio(api_keys={KEY})


@pytest.fixture
def fake(universe: FakeSplio) -> Iterator[FakeServer]:
    with serve(universe) as server:
        yield server


@pytest.fixture
def pb(tmp_path: Path, database_url: str) -> Iterator[Pointbridge]:
    with Pointbridge(tmp_path, database_url=database_url) as host:
        yield host


def _add(
    pb: Pointbridge, fake: FakeServer, name: str = NAME, key: str = KEY, exit_code: int = 0
) -> str:
    return pb.add_integration(
        name, "splio", {"api_url": fake.url, "api_key": key}, exit_code=exit_code
    )


def _bulk_emails(fake: FakeServer) -> list[list[str]]:
    """The e-mails of each bulk create Splio answered, in order."""
    return [
        [contact["email"] for contact in request.json()["contacts"]]
        for request in fake.requests_to("POST", "/data/contacts/bulk")
        if request.status == 207
    ]


def _patches(fake: FakeServer) -> list[tuple[str, dict]]:
    return [(r.path, r.json()) for r in fake.requests if r.method == "PATCH" and r.status == 200]


def test_activation_checks_the_key_creates_fields_once_and_queues_the_initial_sync(
    pb: Pointbridge, fake: FakeServer, universe: FakeSplio
) -> None:
    out = _add(pb, fake, "wrong", "not-the-key", exit_code=1)
    assert "Splio refused the API key: check it (Splio → users → API users)." in out
    assert "not-the-key" not in out
    assert universe.custom_field_names() == ["civility"]  # nothing created
    assert fake.requests_to("POST", "/data/fields") == []
    assert "wrong has no export yet" in pb.cli("export", "wrong", "--status")

    out = _add(pb, fake)
    assert f"created: {', '.join(FIELDS)}" in out
    assert f"{NAME} is active" in out
    assert "initial sync of every customer queued (export 1)" in out
    assert {name: universe.field_by_name(name)["data_type"] for name in FIELDS} == FIELDS
    assert pb.cli("export", NAME, "--status").startswith("export 1 queued: 0/0")

    out = pb.cli("integrations", "install", NAME)
    assert "created:" not in out
    assert f"already there: {', '.join(FIELDS)}" in out
    # Every customer went to this account at activation: a re-install sends nobody again.
    assert "queued" not in out
    assert "none is sent again; `pointbridge integrations install loyoly --resync`" in out
    assert sorted(universe.custom_field_names()) == sorted(["civility", *FIELDS])
    assert len(fake.requests_to("POST", "/data/fields")) == len(FIELDS)


def test_a_customer_from_the_rest_api_reaches_splio_and_the_tier_only_while_in_one(
    pb: Pointbridge, fake: FakeServer, universe: FakeSplio
) -> None:
    _add(pb, fake)
    pb.deliver()  # the initial sync of no customers ends at once
    customer = pb.create_customer("jana@example.com", first_name="Jana", last_name="Nováková")
    pb.transaction(customer["id"], 120, "order")
    pb.deliver()

    assert universe.values("jana@example.com") == {
        "ellity_points_balance": "120",
        "ellity_missions_count": "0",
        "ellity_rewards_count": "0",
        "ellity_referrals_count": "0",
        "ellity_lifetime_points": "120",
    }
    assert universe.contacts["jana@example.com"]["firstname"] == "Jana"
    assert len(fake.requests_to("POST", "/data/contacts/bulk")) == 1

    pb.update_customer(
        customer["id"],
        missions=3,
        rewards=2,
        referrals=1,
        tier_id="gold",
        tier_name="Gold",
        tier_expires_at="2027-01-01",
        points_to_next_tier=380,
    )
    pb.deliver()
    assert universe.values("jana@example.com") == {
        "ellity_points_balance": "120",
        "ellity_missions_count": "3",
        "ellity_rewards_count": "2",
        "ellity_referrals_count": "1",
        "ellity_tier": "Gold",
        "ellity_lifetime_points": "120",
        "ellity_points_to_next_tier": "380",
        # The day the shop set, in the one date format Splio documents (the fake refuses any
        # other): the shop's zone (Europe/Prague by default) does not turn its midnight into
        # UTC's 31 December.
        "ellity_tier_expires_at": "2027-01-01 00:00:00",
    }

    pb.update_customer(
        customer["id"],
        tier_id=None,
        tier_name=None,
        tier_expires_at=None,
        points_to_next_tier=None,
    )
    pb.transaction(customer["id"], -20, "manual")
    pb.deliver()
    values = universe.values("jana@example.com")
    assert values["ellity_tier"] == ""  # emptied when the customer left the tier
    assert values["ellity_points_to_next_tier"] == ""
    assert values["ellity_tier_expires_at"] == ""
    assert values["ellity_points_balance"] == "100"
    assert values["ellity_lifetime_points"] == "120"  # a debit does not lower it
    # Existing contacts are updated by PATCH with the loyalty fields only: one call each, as
    # Splio confirmed it has the contact when it was created.
    assert [path for path, _ in _patches(fake)] == ["/data/contacts/jana@example.com"] * 2
    assert len(fake.requests_to("POST", "/data/contacts/bulk")) == 1
    assert all(set(body) == {"custom_fields"} for _, body in _patches(fake))

    # No events_channel: no interaction is sent, whatever the events.
    assert universe.events == []


def test_an_integration_installed_before_the_tier_end_field_keeps_delivering_the_others(
    pb: Pointbridge, fake: FakeServer, universe: FakeSplio
) -> None:
    # As a pointbridge without ellity_tier_expires_at left it: the universe has seven fields,
    # and the integration's install recorded seven.
    _add(pb, fake)
    pb.deliver()
    del universe.fields[universe.field_by_name("ellity_tier_expires_at")["id"]]
    with pb.services.db.transaction() as session:
        row = pb.services.integrations.get(session, NAME)
        recorded = dict(row.data["fields"])
        del recorded["ellity_tier_expires_at"]
        row.data = {**row.data, "fields": recorded}

    customer = pb.create_customer("jana@example.com", tier_name="Gold")
    pb.transaction(customer["id"], 120, "order")
    pb.update_customer(customer["id"], tier_expires_at="2027-01-01", points_to_next_tier=380)
    pb.deliver()
    pb.update_customer(customer["id"], points_to_next_tier=300)
    pb.deliver()
    # Splio would refuse a field it does not have and pause the integration: the other seven
    # reach it, created and then updated.
    values = universe.values("jana@example.com")
    assert (values["ellity_points_balance"], values["ellity_tier"]) == ("120", "Gold")
    assert values["ellity_points_to_next_tier"] == "300"
    assert "ellity_tier_expires_at" not in values
    assert pb.integration(NAME).status == "active" and pb.dead(NAME) == 0
    assert len(_patches(fake)) == 1

    out = pb.cli("integrations", "install", NAME)
    assert "created: ellity_tier_expires_at" in out
    assert universe.field_by_name("ellity_tier_expires_at")["data_type"] == "date"
    pb.transaction(customer["id"], 5, "order")
    pb.deliver()
    values = universe.values("jana@example.com")
    assert values["ellity_tier_expires_at"] == "2027-01-01 00:00:00"
    assert values["ellity_points_balance"] == "125"


def test_the_initial_sync_updates_known_contacts_and_creates_the_rest_once(
    pb: Pointbridge, fake: FakeServer, universe: FakeSplio
) -> None:
    pb.seed_customers(2 * BULK_MAX + 1)
    # Three customers are in Splio already, on lists the shop manages there.
    newsletter, vip = universe.add_list("Newsletter"), universe.add_list("VIP")
    known = ["customer5@example.com", "customer1500@example.com", "customer2000@example.com"]
    for email in known:
        universe.add_contact(email, lists=[newsletter, vip])["firstname"] = "Kept"

    assert "initial sync of every customer queued (export 1)" in _add(pb, fake)
    assert pb.cli("export", NAME, "--status").startswith("export 1 queued")
    out = pb.cli("export", NAME)
    assert f"export 1 finished: {2 * BULK_MAX + 1} customers sent, 0 refused" in out

    # The bulk create of a page meets the known ones, which are then updated one by one,
    # their lists and names untouched.
    bulks = _bulk_emails(fake)
    # Up to max_in_flight pages are at Splio at once, so they may arrive in any order.
    assert sorted(len(emails) for emails in bulks) == [1, BULK_MAX, BULK_MAX]
    sent = [email for emails in bulks for email in emails]
    assert len(sent) == len(set(sent)) == 2 * BULK_MAX + 1
    assert sorted(path for path, _ in _patches(fake)) == sorted(
        f"/data/contacts/{email}" for email in known
    )
    assert all(set(body) == {"custom_fields"} for _, body in _patches(fake))
    for email in known:
        assert universe.values(email)["ellity_points_balance"] == "10"
        assert universe.contacts[email]["lists"] == [newsletter, vip]
        assert universe.contacts[email]["firstname"] == "Kept"


# Marketing consent: only a customer who agreed joins the list, and only when pointbridge
# creates them; a contact Splio has already keeps its memberships.


def test_a_customer_without_consent_is_on_no_list_one_with_consent_joins_it(
    pb: Pointbridge, fake: FakeServer, universe: FakeSplio
) -> None:
    newsletter = universe.add_list("Newsletter")
    _add(pb, fake)
    pb.cli("integrations", "set", NAME, f"list_id={newsletter}")
    quiet = pb.create_customer("quiet@example.com")
    pb.create_customer("keen@example.com", marketing_consent=True)
    pb.transaction(quiet["id"], 30, "order")
    pb.deliver()

    assert universe.contacts["quiet@example.com"]["lists"] == []
    assert universe.values("quiet@example.com")["ellity_points_balance"] == "30"
    assert universe.contacts["keen@example.com"]["lists"] == [newsletter]


def test_a_contact_who_left_the_list_stays_off_it_after_an_update(
    pb: Pointbridge, fake: FakeServer, universe: FakeSplio
) -> None:
    newsletter = universe.add_list("Newsletter")
    other = universe.add_list("Offers")
    _add(pb, fake)
    pb.cli("integrations", "set", NAME, f"list_id={newsletter}")
    universe.add_contact("left@example.com", lists=[other])
    left = pb.create_customer("left@example.com", marketing_consent=True)
    pb.transaction(left["id"], 10, "order")
    pb.deliver()

    assert universe.contacts["left@example.com"]["lists"] == [other]
    assert universe.values("left@example.com")["ellity_points_balance"] == "10"
    assert all("lists" not in body for _, body in _patches(fake))


def test_splio_prefix_change_without_install_does_not_deliver_empty_contacts(
    pb: Pointbridge, fake: FakeServer, universe: FakeSplio
) -> None:
    """A field_prefix changed while the install it runs fails (Splio down): no contact may go
    out without its loyalty fields and count as delivered (hostile review, session 23)."""
    _add(pb, fake)
    pb.deliver()
    # The install that `integrations set` runs at once meets a Splio outage (503s): the new
    # prefix is saved, the integration stays active.
    fake.fail_next(50, "503", path="/universes/unique-key")
    pb.cli("integrations", "set", NAME, "field_prefix=shop_", exit_code=None)
    with fake._lock:
        fake._planned.clear()
    assert pb.integration(NAME).status == "active"

    customer = pb.create_customer("jana@example.com")
    pb.transaction(customer["id"], 120, "order")
    pb.worker.run_once()  # delivers, or finds the platform refusing and holds the rows
    # Either the points reach Splio (under either prefix) or the delivery is still owed (in
    # the outbox, or the integration paused): never a contact 'delivered' with no points.
    known = "jana@example.com" in universe.contacts
    values = universe.values("jana@example.com") if known else {}
    delivered = any(key.endswith("points_balance") for key in values)
    owed = pb.pending(NAME) + pb.dead(NAME) > 0
    assert delivered or owed or pb.integration(NAME).status != "active", values
