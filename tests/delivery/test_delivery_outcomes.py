"""What the worker does with each answer a platform gives, as an admin sees it: through the
fake platform's state, the outbox CLI and ``/metrics``."""

from __future__ import annotations

import random
import re
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import time_machine

from pointbridge.contract.events import EventType
from pointbridge.delivery.worker import Backoff, Worker
from pointbridge.plugins import PluginHost
from pointbridge.storage.models import IntegrationRow, IntegrationStatus, OutboxStatus
from pointbridge.testing import FakeServer
from pointbridge.testing.e2e import Pointbridge


@pytest.fixture
def pb_any(tmp_path: Path, database_url: str, fakeesp_host: PluginHost) -> Iterator[Pointbridge]:
    """The host on SQLite, then on PostgreSQL."""
    with Pointbridge(tmp_path, database_url=database_url, host=fakeesp_host) as running:
        yield running


def _customers(pb: Pointbridge, count: int, prefix: str = "c") -> list[int]:
    with pb.services.db.transaction() as session:
        return [
            pb.services.loyalty.create_customer(
                session, {"email": f"{prefix}{n}@example.com", "first_name": f"N{n}"}
            ).id
            for n in range(count)
        ]


def _credit(pb: Pointbridge, customer_id: int, points: int, reason: str = "order") -> None:
    with pb.services.db.transaction() as session:
        customer = pb.services.loyalty.get(session, customer_id)
        pb.services.loyalty.post_transaction(session, customer, points, reason)


def _integration(pb: Pointbridge, name: str) -> IntegrationRow:
    with pb.services.db.transaction() as session:
        return pb.services.integrations.get(session, name)


def test_a_hundred_changes_of_one_customer_go_out_as_one_push_with_the_latest_values(
    pb_any: Pointbridge, fake: Any, fake_server: FakeServer, kit: Any
) -> None:
    pb = pb_any
    kit.add_integration(pb, "shop", fake_server)
    (jana,) = _customers(pb, 1, "jana")
    for n in range(100):
        if n % 2:
            _credit(pb, jana, n)
        else:
            with pb.services.db.transaction() as session:
                customer = pb.services.loyalty.get(session, jana)
                pb.services.loyalty.update_customer(session, customer, {"missions": n})

    pb.deliver()

    shop = fake.account("shop")
    assert shop.sends["jana0@example.com"] == 1
    assert shop.contacts == kit.expected_fields(pb, [jana])
    assert shop.contacts["jana0@example.com"]["credit_num"] == sum(range(1, 100, 2))
    assert shop.contacts["jana0@example.com"]["missions"] == 98
    # The 101 contact rows (creation + 100 changes) were all covered by that one push.
    contact_rows = kit.outbox_rows(pb, kind="contact")
    assert len(contact_rows) == 101
    assert {row.status for row in contact_rows} == {OutboxStatus.DELIVERED}
    # Events are not coalesced: each credit fired its own, in order.
    assert [e["data"]["points"] for e in shop.events.values()] == list(range(1, 100, 2))


@pytest.mark.parametrize(("platform", "in_flight"), [("fakeesp", 2), ("fakeesp_small", 1)])
def test_calls_run_at_once_up_to_the_platforms_limit_and_never_share_a_customer(
    pb_any: Pointbridge,
    fake: Any,
    fake_server: FakeServer,
    kit: Any,
    platform: str,
    in_flight: int,
) -> None:
    pb = pb_any
    fake.latency = 0.05
    kit.add_integration(pb, "shop", fake_server, platform=platform, timeout=5)
    customers = _customers(pb, 1200)
    # The shop keeps crediting while the worker sends, so customers whose push is running
    # get new changes: those must wait for the running push, not go out beside it.
    rng = random.Random(3)
    credited = [rng.choice(customers[:300]) for _ in range(150)]
    writer = threading.Thread(target=lambda: [_credit(pb, c, 1) for c in credited])
    writer.start()
    pb.deliver()
    writer.join()
    pb.deliver()

    assert fake.most_running_requests == in_flight
    assert fake.overlapping == []
    shop = fake.account("shop")
    assert shop.contacts == kit.expected_fields(pb, customers)
    assert len(shop.events) == len(credited)


def test_events_wait_until_their_customers_contact_has_arrived(
    pb_any: Pointbridge, fake: Any, fake_server: FakeServer, kit: Any
) -> None:
    pb = pb_any
    kit.add_integration(pb, "shop", fake_server)
    slow, other = _customers(pb, 2)
    _credit(pb, slow, 50)
    with pb.services.db.transaction() as session:
        pb.services.loyalty.set_pin(session, pb.services.loyalty.get(session, slow), "4711")
    _credit(pb, other, 20)
    # The platform refuses the first customer's contact twice before taking it.
    fake.flaky["c0@example.com"] = 2

    pb.deliver()

    shop = fake.account("shop")
    assert [reason for _, _, reason in fake.refused] == ["try again later"] * 2
    # Had the host fired an event first, the platform would have refused it as unknown.
    assert not [r for r in fake.refused if r[0] == "event"]
    arrivals = [
        (a.kind, a.values.get("type")) for a in shop.arrivals if a.email == "c0@example.com"
    ]
    assert arrivals == [
        ("contact", None),
        ("event", str(EventType.CREDIT_CHANGED)),
        ("event", str(EventType.PIN_CHANGED)),
    ]
    assert shop.contacts["c0@example.com"]["pin"] == "4711"
    assert shop.contacts == kit.expected_fields(pb, [slow, other])


def test_a_contact_update_goes_before_a_backlog_of_older_due_events(
    pb_any: Pointbridge, fake: Any, fake_server: FakeServer, kit: Any
) -> None:
    """A first night queues thousands of expiry notices; a purchase made meanwhile must
    reach the platform's fields first, not after every notice (the platform's batch is 100)."""
    pb = pb_any
    kit.add_integration(pb, "shop", fake_server)
    noticed = _customers(pb, 250)
    buyer = _customers(pb, 1, prefix="buyer")[0]
    pb.deliver()
    with pb.services.db.transaction() as session:
        notices = [(c, {"points": 5, "expires_on": "2026-12-31"}) for c in noticed]
        pb.services.outbox.events(session, EventType.CREDIT_EXPIRES, notices)
    _credit(pb, buyer, 40)
    shop = fake.account("shop")
    shop.arrivals.clear()

    pb.deliver()

    assert (shop.arrivals[0].kind, shop.arrivals[0].email) == ("contact", "buyer0@example.com")
    assert len([a for a in shop.arrivals if a.kind == "event"]) == 251


def test_events_take_turns_with_a_stream_of_contact_updates(
    pb_any: Pointbridge, fake: Any, fake_server: FakeServer, kit: Any
) -> None:
    """Contact updates go first, but not for as long as they keep coming: an event that is
    due goes out after one contact call, not after every contact update due (300 here, three
    calls of the platform's 100)."""
    pb = pb_any
    kit.add_integration(pb, "shop", fake_server)
    waiting = _customers(pb, 1, prefix="waiting")[0]
    pb.deliver()
    with pb.services.db.transaction() as session:
        pb.services.outbox.events(session, EventType.PIN_CHANGED, [(waiting, {})])
    _customers(pb, 300)
    shop = fake.account("shop")
    shop.arrivals.clear()

    pb.deliver()

    kinds = [a.kind for a in shop.arrivals]
    assert kinds.index("event") == 100 and kinds.count("contact") == 300


def test_a_refused_contact_goes_dead_and_the_rest_of_its_batch_is_delivered(
    pb: Pointbridge, fake: Any, fake_server: FakeServer, kit: Any
) -> None:
    kit.add_integration(pb, "shop", fake_server)
    fake.refuse["c3@example.com"] = "invalid address"
    ids = _customers(pb, 6)

    pb.deliver()

    shop = fake.account("shop")
    assert fake.calls == 2  # install, then the one batch of six
    assert set(shop.contacts) == {f"c{n}@example.com" for n in (0, 1, 2, 4, 5)}
    (dead,) = kit.outbox_rows(pb, status=OutboxStatus.DEAD)
    assert dead.customer_id == ids[3]
    listing = pb.cli("outbox", "dead")
    assert re.search(
        rf"^\s*{dead.id}\s+shop\s+c3@example\.com\s+contact\s+after 1 attempts: invalid address$",
        listing,
        re.MULTILINE,
    ), listing
    assert re.search(r"^shop\s+active\s+0\s+0\s+1\s+-$", pb.cli("outbox", "status"), re.M)

    # The admin had the address fixed on the platform's side and replays the letter.
    fake.refuse.clear()
    assert "1 dead letters queued again" in pb.cli("outbox", "retry", "--id", str(dead.id))
    pb.deliver()
    assert shop.contacts == kit.expected_fields(pb, ids)
    assert pb.dead() == 0
    assert pb.cli("outbox", "dead").strip() == "no dead letters"


def test_a_failed_call_is_retried_after_a_backoff_that_grows(
    pb: Pointbridge, fake: Any, fake_server: FakeServer, kit: Any
) -> None:
    kit.add_integration(pb, "shop", fake_server)
    worker = Worker(
        pb.services.db,
        pb.services.integrations,
        backoff=Backoff(base=60, rng=random.Random(7)),
    )
    (jana,) = _customers(pb, 1)
    fake.fail_next = [kit.fakeesp.Planned(503), kit.fakeesp.Planned(500)]
    calls = fake.calls

    start = datetime.now(UTC)
    assert worker.run_once().failed == 1
    (row,) = kit.outbox_rows(pb)
    assert row.status == OutboxStatus.PENDING
    assert row.attempts == 1
    assert "HTTP 503" in (row.last_error or "")
    # base * 2^0 * jitter 0.5..1
    assert start + timedelta(seconds=30) <= row.next_attempt_at <= start + timedelta(seconds=61)
    assert worker.run_once().failed == 0  # not due yet: nothing sent
    assert fake.calls == calls + 1

    with time_machine.travel(row.next_attempt_at + timedelta(seconds=1)):
        second = datetime.now(UTC)
        assert worker.run_once().failed == 1
        (row,) = kit.outbox_rows(pb)
        assert row.attempts == 2
        assert "HTTP 500" in (row.last_error or "")
        assert second + timedelta(seconds=60) <= row.next_attempt_at
        assert row.next_attempt_at <= second + timedelta(seconds=121)
    with time_machine.travel(row.next_attempt_at + timedelta(seconds=1)):
        assert worker.run_once().delivered == 1
    assert fake.calls == calls + 3
    assert fake.account("shop").contacts == kit.expected_fields(pb, [jana])


def test_after_max_attempts_a_row_is_dead_until_the_admin_retries_it(
    pb: Pointbridge, fake: Any, fake_server: FakeServer, kit: Any
) -> None:
    kit.add_integration(pb, "shop", fake_server)
    kit.add_integration(pb, "other", fake_server)
    worker = Worker(
        pb.services.db,
        pb.services.integrations,
        max_attempts=3,
        backoff=Backoff(base=0.01, cap=0.02),
    )
    ids = _customers(pb, 2)
    fake.fail_next = [kit.fakeesp.Planned(500, account="shop") for _ in range(5)]

    for _ in range(100):
        worker.run_once()
        if pb.pending() == 0:
            break
        time.sleep(0.02)
    assert pb.pending() == 0
    assert len(fake.fail_next) == 2, "the worker gave up after exactly 3 attempts"
    dead = kit.outbox_rows(pb, status=OutboxStatus.DEAD)
    assert {(row.attempts, row.integration_id) for row in dead} == {
        (3, _integration(pb, "shop").id)
    }
    assert {row.customer_id for row in dead} == set(ids)
    listing = pb.cli("outbox", "dead", "--integration", "shop")
    assert len(re.findall(r"contact\s+after 3 attempts: .*HTTP 500", listing)) == 2, listing
    assert pb.cli("outbox", "dead", "--integration", "other").strip() == "no dead letters"
    status = pb.cli("outbox", "status")
    assert re.search(r"^other\s+active\s+0\s+0\s+0\s+-$", status, re.M), status
    assert re.search(r"^shop\s+active\s+0\s+0\s+2\s+-$", status, re.M), status
    assert fake.account("other").contacts == kit.expected_fields(pb, ids)
    assert fake.account("shop").contacts == {}

    fake.fail_next.clear()
    assert "2 dead letters queued again" in pb.cli("outbox", "retry", "--integration", "shop")
    pb.deliver()
    assert fake.account("shop").contacts == kit.expected_fields(pb, ids)


def test_outbox_status_counts_pending_retrying_and_dead_rows_per_integration(
    pb: Pointbridge, fake: Any, fake_server: FakeServer, kit: Any
) -> None:
    kit.add_integration(pb, "shop", fake_server)
    kit.add_integration(pb, "other", fake_server)
    ids = _customers(pb, 3)
    fake.refuse["c0@example.com"] = "invalid address"
    fake.flaky["c1@example.com"] = 99
    worker = Worker(pb.services.db, pb.services.integrations, backoff=Backoff(base=600))
    with pb.services.db.transaction() as session:
        # "other" is paused by a 429, so its rows have not been tried at all.
        row = pb.services.integrations.get(session, "other")
        row.resume_at = datetime.now(UTC) + timedelta(hours=1)
    worker.drain()

    status = pb.cli("outbox", "status")
    assert status.splitlines()[0].split() == [
        "integration",
        "state",
        "pending",
        "retrying",
        "dead",
        "oldest",
    ]
    assert re.search(r"^other\s+active\s+3\s+0\s+0\s+\d+s$", status, re.M), status
    assert re.search(r"^shop\s+active\s+0\s+1\s+1\s+\d+s$", status, re.M), status
    assert set(fake.account("shop").contacts) == {"c2@example.com"}
    assert fake.account("other").contacts == {}
    assert pb.pending("other") == len(ids)


def test_purge_deletes_old_delivered_rows_and_keeps_pending_and_dead_ones(
    pb: Pointbridge, fake: Any, fake_server: FakeServer, kit: Any
) -> None:
    kit.add_integration(pb, "shop", fake_server)
    fake.refuse["c0@example.com"] = "invalid address"
    ids = _customers(pb, 4)
    pb.deliver()
    fake.flaky["c1@example.com"] = 99
    with pb.services.db.transaction() as session:
        pb.services.loyalty.update_customer(
            session, pb.services.loyalty.get(session, ids[1]), {"missions": 5}
        )
    Worker(pb.services.db, pb.services.integrations, backoff=Backoff(base=600)).drain()
    assert [row.status for row in kit.outbox_rows(pb)] == [
        OutboxStatus.DEAD,
        OutboxStatus.DELIVERED,
        OutboxStatus.DELIVERED,
        OutboxStatus.DELIVERED,
        OutboxStatus.PENDING,
    ]

    today = datetime.now(UTC).date()
    assert "purged 0 delivered rows" in pb.cli(
        "outbox", "purge", "--delivered-before", today.isoformat()
    )
    tomorrow = (today + timedelta(days=1)).isoformat()
    assert "purged 3 delivered rows" in pb.cli("outbox", "purge", "--delivered-before", tomorrow)
    assert [row.status for row in kit.outbox_rows(pb)] == [
        OutboxStatus.DEAD,
        OutboxStatus.PENDING,
    ]
    assert "purged 0 delivered rows" in pb.cli("outbox", "purge", "--delivered-before", tomorrow)


def test_a_429_pauses_only_that_integration_for_retry_after_and_loses_nothing(
    pb: Pointbridge, fake: Any, fake_server: FakeServer, kit: Any
) -> None:
    kit.add_integration(pb, "shop", fake_server)
    kit.add_integration(pb, "other", fake_server)
    ids = _customers(pb, 3)
    fake.fail_next = [kit.fakeesp.Planned(429, {"Retry-After": "120"}, account="shop")]

    before = datetime.now(UTC)
    pb.services.worker().drain()
    shop = _integration(pb, "shop")
    assert shop.resume_at is not None
    assert before + timedelta(seconds=119) <= shop.resume_at
    assert shop.resume_at <= datetime.now(UTC) + timedelta(seconds=120)
    assert shop.status == IntegrationStatus.ACTIVE
    assert fake.account("other").contacts == kit.expected_fields(pb, ids)
    assert pb.pending("shop") == 3
    # A 429 is not the rows' fault: it costs them no attempt.
    assert {r.attempts for r in kit.outbox_rows(pb, integration_id=shop.id)} == {0}

    calls = fake.calls
    pb.services.worker().drain()
    assert fake.calls == calls, "nothing is sent to a paused integration"
    with time_machine.travel(shop.resume_at - timedelta(seconds=2)):
        pb.services.worker().drain()
        assert fake.calls == calls
    with time_machine.travel(shop.resume_at + timedelta(seconds=1)):
        pb.services.worker().drain()
    assert fake.account("shop").contacts == kit.expected_fields(pb, ids)
    assert pb.pending() == 0


def test_an_auth_error_pauses_that_integration_until_its_credentials_are_fixed(
    pb_any: Pointbridge, fake: Any, fake_server: FakeServer, kit: Any
) -> None:
    pb = pb_any
    kit.add_integration(pb, "shop", fake_server)
    kit.add_integration(pb, "other", fake_server)
    # A new key is checked at once: refused, the integration waits for a good one.
    pb.cli("integrations", "set", "shop", "api_key=typo", exit_code=1)
    first = _customers(pb, 3)

    pb.worker.drain()

    listing = pb.cli("integrations", "list")
    assert re.search(r"shop\s+fakeesp_small\s+failing\s+\(Check the API key", listing), listing
    assert re.search(r"other\s+fakeesp_small\s+active$", listing, re.M), listing
    assert fake.account("other").contacts == kit.expected_fields(pb, first)
    assert pb.pending("shop") == 3
    assert pb.dead() == 0
    more = _customers(pb, 2, "later")
    pb.worker.drain()
    assert pb.pending("shop") == 5, "a failing integration is not called again"
    assert fake.account("shop").contacts == {}
    assert fake.account("other").contacts == kit.expected_fields(pb, first + more)

    # The admin fixes the key, which installs again: everything that waited goes out.
    assert "shop is active" in pb.cli("integrations", "set", "shop", "api_key=good")
    pb.deliver()
    assert fake.account("shop").contacts == kit.expected_fields(pb, first + more)

    # The platform refuses the key for a while and then takes it again; this time the admin,
    # with nothing to change, replays with `outbox retry`.
    fake.api_key = "rotated"
    _credit(pb, first[0], 10)
    pb.worker.drain()
    assert _integration(pb, "shop").status == IntegrationStatus.FAILING
    assert _integration(pb, "other").status == IntegrationStatus.FAILING
    fake.api_key = "good"
    output = pb.cli("outbox", "retry", "--integration", "shop")
    assert "shop is active again" in output
    pb.cli("outbox", "retry", "--integration", "other")
    pb.deliver()
    for name in ("shop", "other"):
        assert fake.account(name).contacts == kit.expected_fields(pb, first + more)
        assert len(fake.account(name).events) == 1
    assert pb.dead() == 0


def test_metrics_show_the_outbox_gauges_and_delivery_counters(
    pb: Pointbridge, fake: Any, fake_server: FakeServer, kit: Any
) -> None:
    # Counters live for the whole test process: a name of its own keeps the figures exact.
    name = f"metrics-{uuid.uuid4().hex[:8]}"
    kit.add_integration(pb, name, fake_server)
    fake.refuse["c0@example.com"] = "invalid address"
    fake.fail_next = [kit.fakeesp.Planned(429, {"Retry-After": "0"}, account=name)]
    ids = _customers(pb, 4)
    _credit(pb, ids[1], 5)
    pb.deliver()
    fake.flaky["c2@example.com"] = 99
    _credit(pb, ids[2], 5)
    Worker(pb.services.db, pb.services.integrations, backoff=Backoff(base=600)).drain()

    response = requests.get(f"{pb.url}/metrics", timeout=10)
    assert response.status_code == 200
    samples = _samples(response.text)

    def value(metric: str, **labels: str) -> float:
        return samples[(metric, frozenset({"integration": name, **labels}.items()))]

    assert value("pointbridge_outbox_rows", state="pending") == 1  # the event, waiting
    assert value("pointbridge_outbox_rows", state="retrying") == 1
    assert value("pointbridge_outbox_rows", state="dead") == 1
    assert value("pointbridge_outbox_oldest_pending_seconds") >= 0
    assert value("pointbridge_delivered_total", kind="contact") == 4
    assert value("pointbridge_delivered_total", kind="event") == 1
    assert value("pointbridge_failed_total", kind="contact") == 2
    assert value("pointbridge_rate_limited_total") == 1
    assert value("pointbridge_delivery_latency_seconds_count", kind="contact") == 4
    assert value("pointbridge_platform_call_seconds_count", hook="push_contact") == 3
    assert value("pointbridge_platform_call_seconds_count", hook="emit_event") == 1


_SAMPLE = re.compile(r"^(\w+)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Prometheus text format as {(metric, labels): value}."""
    samples = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            labels = frozenset(_LABEL.findall(match.group(2) or ""))
            samples[(match.group(1), labels)] = float(match.group(3))
    return samples
