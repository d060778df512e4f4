"""The whole host against a fake Dotdigital over real HTTP: CLI, REST API, worker, export.

Contact writes are paced by the integration's shared budget at the declared 35 calls a minute,
as in production, so each delivered batch costs about 1.8 s of waiting. The export and retry
tests, which need many calls, declare the same budget ten times faster (35 calls per 6 s):
at the real rate the export alone would sleep 20 s. Rate limits and failures are planned
(``FakeServer.fail_next``), so every run meets the same ones however fast the machine is.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path

import pointbridge_dotmailer
import pytest
from pointbridge_dotmailer import MAX_BATCH
from pointbridge_dotmailer.fake import DEFAULT_DATA_FIELDS, DotdigitalState
from sqlalchemy import select

from pointbridge.export import Exporter, Progress, queue_export
from pointbridge.models import Customer
from pointbridge.ratelimit import RateLimit
from pointbridge.testing import FakeServer
from pointbridge.testing.e2e import Pointbridge

NAME = "shop"
BOOK = 7
IMPORT = "/contacts/v3/import"
FIELDS = {
    "ELLITY_POINTS": "Numeric",
    "ELLITY_REFERRAL_URL": "String",
    "ELLITY_STATE": "String",
    "ELLITY_TIER_NAME": "String",
    "ELLITY_TIER_ID": "String",
}


@pytest.fixture
def pb(tmp_path: Path, database_url: str) -> Iterator[Pointbridge]:
    with Pointbridge(tmp_path, database_url=database_url) as host:
        yield host


@pytest.fixture
def fast_pb(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Pointbridge]:
    """A host where Dotdigital declares 35 calls per 6 s: the host registers the patched
    platform and the plugin paces with its limit, so they still share one budget."""
    platform = dataclasses.replace(pointbridge_dotmailer.PLATFORM, rate_limit=RateLimit(35, 6.0))
    monkeypatch.setattr(pointbridge_dotmailer, "PLATFORM", platform)
    with Pointbridge(tmp_path, database_url=database_url) as host:
        assert host.services.host.platform("dotmailer").rate_limit == RateLimit(35, 6.0)
        yield host


def _add(pb: Pointbridge, dd_server: FakeServer, dd_state: DotdigitalState) -> str:
    """``integrations add`` with good credentials and the address book: installs at once."""
    settings = {
        "api_url": dd_server.url,
        "username": dd_state.username,
        "password": dd_state.password,
        "address_book_id": BOOK,
    }
    return pb.add_integration(NAME, "dotmailer", settings)


def _imports(dd_server: FakeServer) -> list[list[str]]:
    """The e-mails of each import Dotdigital accepted, in order."""
    return [
        [row["identifiers"]["email"] for row in request.json()["contacts"]]
        for request in dd_server.requests_to("PUT", "/contacts/v3/import")
        if request.status == 202
    ]


def _assert_fake_matches_database(pb: Pointbridge, dd_state: DotdigitalState) -> None:
    with pb.services.db.transaction() as session:
        customers = list(session.scalars(select(Customer).order_by(Customer.id)))
        assert customers
        for customer in customers:
            contact = dd_state.contacts[customer.email]
            assert contact.data_fields["ELLITY_POINTS"] == customer.balance, customer.email
            assert contact.data_fields["ELLITY_TIER_NAME"] == (customer.tier_name or "")
            assert contact.data_fields["ELLITY_TIER_ID"] == (customer.tier_id or "")
            state = "member" if customer.registered else "guest"
            assert contact.data_fields["ELLITY_STATE"] == state
            assert BOOK in contact.lists
    assert pb.pending() == 0
    assert pb.dead() == 0


def test_activation_checks_credentials_asks_for_the_book_and_creates_fields_once(
    pb: Pointbridge, dd_server: FakeServer, dd_state: DotdigitalState
) -> None:
    out = pb.cli(
        "integrations",
        "add",
        "wrong",
        "--plugin",
        "dotmailer",
        f"--set=api_url={dd_server.url}",
        f"--set=username={dd_state.username}",
        "--set=password=not-the-password",
        f"--set=address_book_id={BOOK}",
        exit_code=1,
    )
    assert "Dotdigital refused the API user: check the API user's e-mail and password" in out
    assert "not-the-password" not in out
    assert sorted(dd_state.data_fields) == sorted(DEFAULT_DATA_FIELDS)  # nothing created
    assert "status: failing" in pb.cli("integrations", "show", "wrong")

    # Good credentials but no address book: install lists the account's books to pick from.
    out = pb.cli(
        "integrations",
        "add",
        NAME,
        "--plugin",
        "dotmailer",
        f"--set=api_url={dd_server.url}",
        f"--set=username={dd_state.username}",
        f"--set=password={dd_state.password}",
        exit_code=1,
    )
    assert "Choose the Dotdigital address book to sync to" in out
    assert f"{BOOK}  Customers" in out and "8  Newsletter" in out
    assert f"pointbridge integrations set {NAME} address_book_id=VALUE" in out
    assert sorted(dd_state.data_fields) == sorted(DEFAULT_DATA_FIELDS)

    assert "changed address_book_id" in pb.cli(
        "integrations", "set", NAME, f"address_book_id={BOOK}"
    )
    out = pb.cli("integrations", "install", NAME)
    assert f"created: {', '.join(FIELDS)}" in out
    assert "Contacts go to address book “Customers”" in out
    assert f"{NAME} is active" in out
    assert {name: dd_state.data_fields[name]["type"] for name in FIELDS} == FIELDS

    out = pb.cli("integrations", "install", NAME)
    assert "created:" not in out
    assert f"already there: {', '.join(FIELDS)}" in out
    assert len(dd_server.requests_to("POST", "/v2/data-fields")) == len(FIELDS)
    assert len(dd_state.data_fields) == len(DEFAULT_DATA_FIELDS) + len(FIELDS)


def test_a_customer_from_the_rest_api_reaches_dotdigital_with_every_field(
    pb: Pointbridge, dd_server: FakeServer, dd_state: DotdigitalState
) -> None:
    _add(pb, dd_server, dd_state)
    customer = pb.create_customer("jana@example.com", first_name="Jana", last_name="Nováková")
    pb.transaction(customer["id"], 120, "order")
    pb.deliver()

    contact = dd_state.contacts["jana@example.com"]
    assert contact.data_fields == {
        "ELLITY_POINTS": 120,
        "ELLITY_REFERRAL_URL": customer["referral_link"],
        "ELLITY_STATE": "guest",
        "ELLITY_TIER_NAME": "",
        "ELLITY_TIER_ID": "",
        "FIRSTNAME": "Jana",
        "LASTNAME": "Nováková",
    }
    assert customer["referral_link"].endswith(customer["referral_code"])
    assert contact.lists == {BOOK}
    assert contact.status == "subscribed" and dd_state.optin_emails == []

    pb.update_customer(customer["id"], registered=True, tier_id="gold", tier_name="Gold")
    pb.transaction(customer["id"], -20, "manual")
    pb.deliver()
    fields = dd_state.contacts["jana@example.com"].data_fields
    assert fields["ELLITY_POINTS"] == 100
    assert fields["ELLITY_STATE"] == "member"
    assert (fields["ELLITY_TIER_NAME"], fields["ELLITY_TIER_ID"]) == ("Gold", "gold")

    pb.update_customer(customer["id"], tier_id=None, tier_name=None)
    pb.deliver()
    fields = dd_state.contacts["jana@example.com"].data_fields
    assert (fields["ELLITY_TIER_NAME"], fields["ELLITY_TIER_ID"]) == ("", "")
    assert fields["ELLITY_POINTS"] == 100

    # Dotdigital gets no events: the expiry notice is not offered.
    assert "expiry_notice: does not apply (no events)" in pb.cli("integrations", "show", NAME)
    out = pb.cli("integrations", "set", NAME, "expiry_notice_days=7", exit_code=1)
    assert "has no events in pointbridge, so the expiry notice does not apply" in out
    assert "expiry_notice: does not apply (no events)" in pb.cli("integrations", "show", NAME)


def test_an_interrupted_export_of_10001_customers_resumes_in_full_imports(
    fast_pb: Pointbridge, dd_server: FakeServer, dd_state: DotdigitalState
) -> None:
    pb = fast_pb
    _add(pb, dd_server, dd_state)
    pb.seed_customers(10_001)

    # A first run stopped after three pages (a crash, a deploy, Ctrl-C)...
    integration_id = pb.integration(NAME).id
    job = queue_export(pb.services.db, integration_id)
    stop = threading.Event()

    def stop_after_three_pages(progress: Progress) -> None:
        if progress.done >= 3 * MAX_BATCH:
            stop.set()

    exporter = Exporter(pb.services.db, pb.services.integrations, pb.services.outbox, owner="a")
    first = exporter.run(job.id, stop=stop, on_progress=stop_after_three_pages)
    # The page under way when the stop came is finished, not cut in half.
    assert first.status == "running"
    assert 3 * MAX_BATCH <= first.done < 10_001 and first.done % MAX_BATCH == 0
    assert len(dd_state.contacts) == first.done

    # ...and `pointbridge export` continues where it stopped.
    out = pb.cli("export", NAME)
    assert f"resuming export {job.id} after {first.done} customers" in out
    assert f"export {job.id} finished: 10001 customers sent, 0 refused" in out

    imports = _imports(dd_server)
    assert [len(emails) for emails in imports] == [MAX_BATCH] * 10
    # The one customer of the last page is written alone, which needs no import.
    patches = [r.path for r in dd_server.requests if r.method == "PATCH"]
    assert patches == ["/contacts/v3/email/customer10000@example.com"]
    sent = [email for emails in imports for email in emails] + ["customer10000@example.com"]
    assert len(sent) == len(set(sent)) == 10_001  # every customer exactly once
    assert len(dd_state.contacts) == 10_001
    assert dd_state.book_members(BOOK) == {f"customer{n}@example.com" for n in range(10_001)}
    assert all(c.data_fields["ELLITY_POINTS"] == 10 for c in dd_state.contacts.values())
    assert "finished: 10001/10001" in pb.cli("export", NAME, "--status")


def test_rate_limits_and_failures_are_retried_and_nothing_is_lost(
    fast_pb: Pointbridge, dd_server: FakeServer, dd_state: DotdigitalState
) -> None:
    pb = fast_pb
    _add(pb, dd_server, dd_state)
    ids = [pb.create_customer(f"c{n}@example.com")["id"] for n in range(12)]
    pb.deliver()
    # Another tool on the account used up the import tier: Dotdigital's 429 with
    # x-ratelimit-reset stops the next import, and the batch waits for the window.
    dd_server.fail_next(1, "429", path=IMPORT, retry_after=0.2)
    for n, customer_id in enumerate(ids):
        pb.transaction(customer_id, 10 * (n + 1), "order")
    pb.deliver()
    assert [r.status for r in dd_server.requests_to("PUT", IMPORT)][-2:] == [429, 202]
    assert pb.integration(NAME).status == "active"

    # Then an import meets a 500, a 503 and a dropped connection in turn, and a single
    # contact's write a 503: each is sent again until it lands.
    before = len(dd_server.requests_to("PUT", IMPORT))
    for fault in ("500", "503", "drop"):
        dd_server.fail_next(1, fault, path=IMPORT)
    pb.update_customer(ids[0], tier_id="silver", tier_name="Silver", registered=True)
    for customer_id in ids[1:]:
        pb.transaction(customer_id, 7, "review")
    pb.deliver()
    statuses = [r.status for r in dd_server.requests_to("PUT", IMPORT)][before:]
    assert statuses[:3] == [500, 503, 0] and set(statuses[3:]) == {202}
    dd_server.fail_next(1, "503", path="/contacts/v3/email/c1@example.com")
    pb.transaction(ids[1], -5, "manual")
    pb.deliver()
    patches = dd_server.requests_to("PATCH", "/contacts/v3/email/c1@example.com")
    assert [r.status for r in patches] == [503, 200]

    _assert_fake_matches_database(pb, dd_state)
    assert dd_state.contacts["c1@example.com"].data_fields["ELLITY_POINTS"] == 22
    assert dd_state.contacts["c0@example.com"].data_fields["ELLITY_TIER_NAME"] == "Silver"
