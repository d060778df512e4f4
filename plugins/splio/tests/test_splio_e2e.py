"""The whole host against a fake Splio over real HTTP: CLI, REST API, worker, export.

The integration paces at its declared 20/s, as in production; Splio's 429s and failures are
planned (``fail_next``), so the stories run the same on any machine.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pointbridge_splio.client import BULK_MAX
from pointbridge_splio.fake import FakeSplio, serve
from sqlalchemy import select

from pointbridge.export import Exporter, Progress, queue_export
from pointbridge.models import Customer, OutboxMessage
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


def _assert_fake_matches_database(pb: Pointbridge, universe: FakeSplio) -> None:
    with pb.services.db.transaction() as session:
        customers = list(session.scalars(select(Customer).order_by(Customer.id)))
    assert customers
    for customer in customers:
        values = universe.values(customer.email)
        assert values["ellity_points_balance"] == str(customer.balance), customer.email
        assert values["ellity_missions_count"] == str(customer.missions)
        assert values["ellity_rewards_count"] == str(customer.rewards)
        assert values["ellity_referrals_count"] == str(customer.referrals)
        assert values.get("ellity_tier", "") == (customer.tier_name or "")
    assert pb.pending() == 0
    assert pb.dead() == 0


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
    assert "initial sync of every customer queued (export 1)" in out  # the same, not a second
    assert sorted(universe.custom_field_names()) == sorted(["civility", *FIELDS])
    assert len(fake.requests_to("POST", "/data/fields")) == len(FIELDS)


def test_a_customer_from_the_rest_api_reaches_splio_and_the_tier_only_while_in_one(
    pb: Pointbridge, fake: FakeServer, universe: FakeSplio
) -> None:
    _add(pb, fake)
    customer = pb.create_customer("jana@example.com", first_name="Jana", last_name="Nováková")
    pb.transaction(customer["id"], 120, "order")
    pb.deliver()

    assert universe.values("jana@example.com") == {
        "ellity_points_balance": "120",
        "ellity_missions_count": "0",
        "ellity_rewards_count": "0",
        "ellity_referrals_count": "0",
    }
    assert universe.contacts["jana@example.com"]["firstname"] == "Jana"
    assert len(fake.requests_to("POST", "/data/contacts/bulk")) == 1

    pb.update_customer(
        customer["id"], missions=3, rewards=2, referrals=1, tier_id="gold", tier_name="Gold"
    )
    pb.deliver()
    assert universe.values("jana@example.com") == {
        "ellity_points_balance": "120",
        "ellity_missions_count": "3",
        "ellity_rewards_count": "2",
        "ellity_referrals_count": "1",
        "ellity_tier": "Gold",
    }

    pb.update_customer(customer["id"], tier_id=None, tier_name=None)
    pb.transaction(customer["id"], -20, "manual")
    pb.deliver()
    values = universe.values("jana@example.com")
    assert values["ellity_tier"] == ""  # emptied when the customer left the tier
    assert values["ellity_points_balance"] == "100"
    # Existing contacts are updated by PATCH with the loyalty fields only: one call each, as
    # Splio confirmed it has the contact when it was created.
    assert [path for path, _ in _patches(fake)] == ["/data/contacts/jana@example.com"] * 2
    assert len(fake.requests_to("POST", "/data/contacts/bulk")) == 1
    assert all(set(body) == {"custom_fields"} for _, body in _patches(fake))

    # Splio gets no events: the expiry notice is not offered.
    assert "expiry_notice: does not apply (no events)" in pb.cli("integrations", "show", NAME)
    out = pb.cli("integrations", "set", NAME, "expiry_notice_days=7", exit_code=1)
    assert "Splio has no events in pointbridge, so the expiry notice does not apply" in out


def test_the_initial_sync_of_10001_customers_resumes_and_only_updates_known_contacts(
    pb: Pointbridge, fake: FakeServer, universe: FakeSplio
) -> None:
    pb.seed_customers(10_001)
    # Three customers are in Splio already, on lists the shop manages there.
    newsletter, vip = universe.add_list("Newsletter"), universe.add_list("VIP")
    known = ["customer5@example.com", "customer2500@example.com", "customer9999@example.com"]
    for email in known:
        universe.add_contact(email, lists=[newsletter, vip])["firstname"] = "Kept"

    assert "initial sync of every customer queued (export 1)" in _add(pb, fake)
    assert pb.cli("export", NAME, "--status").startswith("export 1 queued")

    # A first run stopped after three pages (a crash, a deploy, Ctrl-C)...
    job = queue_export(pb.services.db, pb.integration(NAME).id)
    assert job.id == 1
    stop = threading.Event()

    def stop_after_three_pages(progress: Progress) -> None:
        if progress.done >= 3 * BULK_MAX:
            stop.set()

    exporter = Exporter(pb.services.db, pb.services.integrations, pb.services.outbox, owner="a")
    first = exporter.run(job.id, stop=stop, on_progress=stop_after_three_pages)
    assert first.status == "running"
    assert 3 * BULK_MAX <= first.done < 10_001 and first.done % BULK_MAX == 0

    # ...and `pointbridge export` continues where it stopped.
    out = pb.cli("export", NAME)
    assert f"resuming export 1 after {first.done} customers" in out
    assert "export 1 finished: 10001 customers sent, 0 refused" in out

    bulks = _bulk_emails(fake)
    assert [len(emails) for emails in bulks] == [BULK_MAX] * 10 + [1]
    sent = [email for emails in bulks for email in emails]
    assert len(sent) == len(set(sent)) == 10_001  # every customer exactly once
    assert len(universe.contacts) == 10_001
    assert universe.values("customer10000@example.com")["ellity_points_balance"] == "10"

    # The known contacts were updated one by one, their lists and names untouched.
    assert sorted(path for path, _ in _patches(fake)) == sorted(
        f"/data/contacts/{email}" for email in known
    )
    assert all(set(body) == {"custom_fields"} for _, body in _patches(fake))
    for email in known:
        assert universe.values(email)["ellity_points_balance"] == "10"
        assert universe.contacts[email]["lists"] == [newsletter, vip]
        assert universe.contacts[email]["firstname"] == "Kept"
    assert "finished: 10001/10001" in pb.cli("export", NAME, "--status")


def test_rate_limits_and_failures_are_retried_and_nothing_is_lost(
    pb: Pointbridge, fake: FakeServer, universe: FakeSplio
) -> None:
    _add(pb, fake)
    ids = [pb.create_customer(f"c{n}@example.com")["id"] for n in range(24)]
    pb.deliver()

    # Another tool on this IP used up the budget: updating 24 known contacts one by one meets
    # Splio's 429 with RateLimit-Reset in the middle of a call. The untried ones wait, and
    # none of them spends an attempt.
    fake.fail_next(1, "429", path="/data/contacts/c9@example.com", retry_after=1)
    fake.clear()
    for n, customer_id in enumerate(ids):
        pb.transaction(customer_id, 10 * (n + 1), "order")
    pb.deliver()
    assert [r.status for r in fake.requests if r.status == 429] == [429]
    assert fake.requests_to("POST", "/data/contacts/bulk") == []  # one PATCH per contact
    with pb.services.db.transaction() as session:
        assert set(session.scalars(select(OutboxMessage.attempts))) == {1}
    assert pb.integration(NAME).status == "active"
    _assert_fake_matches_database(pb, universe)

    # Then requests fail (500, 503) or lose their connection unanswered.
    fake.fail_next(1, "500", path="/data/contacts/c0@example.com")
    fake.fail_next(1, "drop", path="/data/contacts/c3@example.com")
    fake.fail_next(1, "503", path="/data/contacts/c5@example.com")
    pb.update_customer(ids[0], tier_id="silver", tier_name="Silver", missions=2)
    for customer_id in ids[1:8]:
        pb.transaction(customer_id, 7, "review")
    pb.deliver()
    pb.update_customer(ids[0], tier_id=None, tier_name=None)
    pb.deliver()

    assert {r.status for r in fake.requests} >= {0, 500, 503}
    _assert_fake_matches_database(pb, universe)
    assert universe.values("c1@example.com")["ellity_points_balance"] == "27"
    assert universe.values("c0@example.com")["ellity_missions_count"] == "2"
