"""The whole host against a fake Dotdigital over real HTTP: CLI, REST API, worker.

Contact writes are paced by the integration's shared budget at the declared 35 calls a minute,
as in production, so each delivered batch costs about 1.8 s of waiting. Throttling (a 429
naming no wait too), faults, the big export, the first activation and corrected credentials
are the stories every plugin passes (test_dotmailer_contract.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pointbridge_dotmailer.fake import DEFAULT_DATA_FIELDS, DotdigitalState, FakeContact

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
    "ELLITY_LIFETIME_PTS": "Numeric",
    "ELLITY_TIER_EXPIRES": "Date",
    "ELLITY_TO_NEXT_TIER": "Numeric",
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

    _reinstall_creates_nothing(pb, dd_server, dd_state, FIELDS, created=len(FIELDS))


def _reinstall_creates_nothing(
    pb: Pointbridge,
    dd_server: FakeServer,
    dd_state: DotdigitalState,
    fields: dict[str, str],
    created: int,
) -> None:
    """Installing again reuses every field: the ``created`` POSTs so far stay all there are."""
    out = pb.cli("integrations", "install", NAME)
    assert "created:" not in out
    assert f"already there: {', '.join(fields)}" in out
    assert len(dd_server.requests_to("POST", "/v2/data-fields")) == created
    assert len(dd_state.data_fields) == len(DEFAULT_DATA_FIELDS) + len(fields)


def test_a_customer_from_the_rest_api_reaches_dotdigital_with_every_field(
    pb: Pointbridge, dd_server: FakeServer, dd_state: DotdigitalState
) -> None:
    _add(pb, dd_server, dd_state)
    customer = pb.create_customer(
        "jana@example.com", first_name="Jana", last_name="Nováková", marketing_consent=True
    )
    pb.transaction(customer["id"], 120, "order")
    pb.deliver()

    contact = dd_state.contacts["jana@example.com"]
    assert contact.data_fields == {
        "ELLITY_POINTS": 120,
        "ELLITY_REFERRAL_URL": customer["referral_link"],
        "ELLITY_STATE": "guest",
        "ELLITY_TIER_NAME": None,
        "ELLITY_TIER_ID": None,
        "ELLITY_LIFETIME_PTS": 120,
        "ELLITY_TIER_EXPIRES": None,
        "ELLITY_TO_NEXT_TIER": None,
        "FIRSTNAME": "Jana",
        "LASTNAME": "Nováková",
    }
    assert customer["referral_link"].endswith(customer["referral_code"])
    assert contact.lists == {BOOK}
    assert contact.status == "subscribed" and dd_state.optin_emails == []

    pb.update_customer(
        customer["id"],
        registered=True,
        tier_id="gold",
        tier_name="Gold",
        tier_expires_at="2027-01-01",
        points_to_next_tier=380,
    )
    pb.transaction(customer["id"], -20, "manual")
    pb.deliver()
    fields = dd_state.contacts["jana@example.com"].data_fields
    assert fields["ELLITY_POINTS"] == 100
    assert fields["ELLITY_STATE"] == "member"
    assert (fields["ELLITY_TIER_NAME"], fields["ELLITY_TIER_ID"]) == ("Gold", "gold")
    # Spending does not lower the lifetime total. The tier ends on the day the shop set, in
    # ISO 8601 (the fake refuses anything else in a Date field): the shop's zone (Europe/
    # Prague by default) does not turn its midnight into UTC's 31 December.
    assert fields["ELLITY_LIFETIME_PTS"] == 120
    assert (fields["ELLITY_TIER_EXPIRES"], fields["ELLITY_TO_NEXT_TIER"]) == ("2027-01-01", 380)

    pb.update_customer(
        customer["id"],
        tier_id=None,
        tier_name=None,
        tier_expires_at=None,
        points_to_next_tier=None,
    )
    pb.deliver()
    fields = dd_state.contacts["jana@example.com"].data_fields
    # Cleared with null, as Dotdigital documents; "" would stay stored as an empty string.
    assert (fields["ELLITY_TIER_NAME"], fields["ELLITY_TIER_ID"]) == (None, None)
    assert (fields["ELLITY_TIER_EXPIRES"], fields["ELLITY_TO_NEXT_TIER"]) == (None, None)
    assert fields["ELLITY_POINTS"] == 100

    # Dotdigital gets no events: the expiry notice is not offered.
    assert "expiry_notice: does not apply (no events)" in pb.cli("integrations", "show", NAME)
    out = pb.cli("integrations", "set", NAME, "expiry_notice_days=7", exit_code=1)
    assert "has no events in pointbridge, so the expiry notice does not apply" in out
    assert "expiry_notice: does not apply (no events)" in pb.cli("integrations", "show", NAME)


SMILE = {
    "SMILE_POINTS_BALANCE": "Numeric",
    "SMILE_REFERRAL_URL": "String",
    "SMILE_STATE": "String",
    "SMILE_VIP_TIER_NAME": "String",
    "SMILE_VIP_TIER_ID": "Numeric",
}


def test_the_smile_preset_writes_smiles_data_fields_and_reuses_them(
    pb: Pointbridge, dd_server: FakeServer, dd_state: DotdigitalState
) -> None:
    # An account moving from Smile already has Smile's fields; one is enough to show the reuse.
    dd_state.data_fields.add("SMILE_POINTS_BALANCE", "Numeric", visibility="Private")
    settings = {
        "api_url": dd_server.url,
        "username": dd_state.username,
        "password": dd_state.password,
        "address_book_id": BOOK,
        "field_preset": "smile",
    }
    out = pb.add_integration(NAME, "dotmailer", settings)
    created = [name for name in SMILE if name != "SMILE_POINTS_BALANCE"]
    assert f"created: {', '.join(created)}" in out
    assert "already there: SMILE_POINTS_BALANCE" in out
    assert "SMILE_VIP_TIER_ID is numeric: a tier id not a number is left empty" in out
    assert {name: dd_state.data_fields[name]["type"] for name in SMILE} == SMILE
    assert not [name for name in dd_state.data_fields if name.startswith("ELLITY_")]
    # Smile documents no lifetime total or tier progress: no SMILE_* field is invented.
    assert sorted(n for n in dd_state.data_fields if n.startswith("SMILE_")) == sorted(SMILE)

    # Smile's tier ids are numbers; the shop's customers carry them over as text.
    customer = pb.create_customer(
        "jana@example.com",
        tier_id="426715794",
        tier_name="Gold",
        tier_expires_at="2027-01-01",
        points_to_next_tier=380,
    )
    pb.transaction(customer["id"], 120, "order")
    pb.deliver()
    assert dd_state.contacts["jana@example.com"].data_fields == {
        "SMILE_POINTS_BALANCE": 120,
        "SMILE_REFERRAL_URL": customer["referral_link"],
        "SMILE_STATE": "candidate",
        "SMILE_VIP_TIER_NAME": "Gold",
        "SMILE_VIP_TIER_ID": 426715794,
    }

    pb.update_customer(customer["id"], registered=True)
    pb.deliver()
    assert dd_state.contacts["jana@example.com"].data_fields["SMILE_STATE"] == "member"

    # A tier id Smile could not have had leaves the numeric field empty, and nothing else.
    pb.update_customer(customer["id"], tier_id="gold")
    pb.transaction(customer["id"], -20, "manual")
    pb.deliver()
    fields = dd_state.contacts["jana@example.com"].data_fields
    assert (fields["SMILE_VIP_TIER_ID"], fields["SMILE_VIP_TIER_NAME"]) == (None, "Gold")
    assert (fields["SMILE_POINTS_BALANCE"], fields["SMILE_STATE"]) == (100, "member")
    assert pb.pending(NAME) == 0

    _reinstall_creates_nothing(pb, dd_server, dd_state, SMILE, created=len(created))


def test_switching_to_the_smile_preset_sends_every_customer_again(
    pb: Pointbridge, dd_server: FakeServer, dd_state: DotdigitalState
) -> None:
    _add(pb, dd_server, dd_state)
    customer = pb.create_customer("jana@example.com", registered=True)
    pb.transaction(customer["id"], 120, "order")
    pb.deliver()
    assert dd_state.contacts["jana@example.com"].data_fields["ELLITY_POINTS"] == 120

    out = pb.cli("integrations", "set", NAME, "field_preset=smile")
    assert f"created: {', '.join(SMILE)}" in out
    assert "initial sync of every customer queued (export 2) for its new target" in out
    # Not written yet: a balance of 0, but no tier rather than a tier numbered 0.
    defaults = {name: dd_state.data_fields[name]["defaultValue"] for name in SMILE}
    assert defaults["SMILE_POINTS_BALANCE"] == 0 and defaults["SMILE_VIP_TIER_ID"] is None
    pb.cli("export", NAME)
    fields = dd_state.contacts["jana@example.com"].data_fields
    assert (fields["SMILE_POINTS_BALANCE"], fields["SMILE_STATE"]) == (120, "member")
    assert fields["SMILE_VIP_TIER_ID"] is None

    out = pb.cli("integrations", "set", NAME, "field_preset=bronze", exit_code=1)
    assert "field_preset: Must be empty or smile." in out


# Marketing consent: Dotdigital subscribes a new contact sent without a channel status, so a
# customer without consent is created unsubscribed; a status already in the account is kept.


def test_a_customer_without_consent_arrives_unsubscribed_with_consent_subscribed(
    pb: Pointbridge, dd_server: FakeServer, dd_state: DotdigitalState
) -> None:
    _add(pb, dd_server, dd_state)
    quiet = pb.create_customer("quiet@example.com")
    pb.create_customer("keen@example.com", marketing_consent=True)
    pb.transaction(quiet["id"], 30, "order")
    pb.deliver()

    assert dd_state.contacts["quiet@example.com"].status == "unsubscribed"
    assert dd_state.contacts["quiet@example.com"].data_fields["ELLITY_POINTS"] == 30
    assert dd_state.contacts["keen@example.com"].status == "subscribed"
    assert dd_state.optin_emails == [] and dd_state.resubscribed == []


def test_statuses_in_the_account_are_kept_whatever_the_consent(
    pb: Pointbridge, dd_server: FakeServer, dd_state: DotdigitalState
) -> None:
    _add(pb, dd_server, dd_state)
    dd_state.contacts["left@example.com"] = FakeContact(
        1, "left@example.com", status="unsubscribed"
    )
    dd_state.contacts["fan@example.com"] = FakeContact(2, "fan@example.com", status="subscribed")
    left = pb.create_customer("left@example.com", marketing_consent=True)
    fan = pb.create_customer("fan@example.com")
    pb.deliver()  # the two together: one import
    pb.transaction(left["id"], 10, "order")
    pb.deliver()  # one alone: a PATCH
    pb.update_customer(fan["id"], first_name="Fan")
    pb.deliver()

    assert dd_state.contacts["left@example.com"].status == "unsubscribed"
    assert dd_state.contacts["left@example.com"].data_fields["ELLITY_POINTS"] == 10
    assert dd_state.contacts["fan@example.com"].status == "subscribed"
    assert dd_state.resubscribed == [] and dd_state.optin_emails == []
    assert dd_server.requests_to("PUT", "/contacts/v3/import")
