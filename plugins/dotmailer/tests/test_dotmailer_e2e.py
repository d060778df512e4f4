"""The whole host against a fake Dotdigital over real HTTP: CLI, REST API, worker.

Contact writes are paced by the integration's shared budget at the declared 35 calls a minute,
as in production, so each delivered batch costs about 1.8 s of waiting. Throttling, faults and
the big export are the stories every plugin passes (test_dotmailer_stories.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pointbridge_dotmailer.fake import DEFAULT_DATA_FIELDS, DotdigitalState

from pointbridge.testing import FakeServer
from pointbridge.testing.e2e import Pointbridge

NAME = "shop"
BOOK = 7
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


def _add(pb: Pointbridge, dd_server: FakeServer, dd_state: DotdigitalState) -> str:
    """``integrations add`` with good credentials and the address book: installs at once."""
    settings = {
        "api_url": dd_server.url,
        "username": dd_state.username,
        "password": dd_state.password,
        "address_book_id": BOOK,
    }
    return pb.add_integration(NAME, "dotmailer", settings)


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

    # Picking the book installs at once.
    out = pb.cli("integrations", "set", NAME, f"address_book_id={BOOK}")
    assert "changed address_book_id" in out
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
        "ELLITY_TIER_NAME": None,
        "ELLITY_TIER_ID": None,
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
    # Cleared with null, as Dotdigital documents; "" would stay stored as an empty string.
    assert (fields["ELLITY_TIER_NAME"], fields["ELLITY_TIER_ID"]) == (None, None)
    assert fields["ELLITY_POINTS"] == 100

    # Dotdigital gets no events: the expiry notice is not offered.
    assert "expiry_notice: does not apply (no events)" in pb.cli("integrations", "show", NAME)
    out = pb.cli("integrations", "set", NAME, "expiry_notice_days=7", exit_code=1)
    assert "has no events in pointbridge, so the expiry notice does not apply" in out
    assert "expiry_notice: does not apply (no events)" in pb.cli("integrations", "show", NAME)
