"""Ecomail end to end: the whole pointbridge host (REST API, CLI, webhooks, worker, export) over
real HTTP against the fake Ecomail, checking what a shop would see in its Ecomail account.
Throttling (a 429 naming no wait too), faults, the big export, the first activation and
corrected credentials are the stories every plugin passes (test_ecomail_contract.py); these
are Ecomail's own."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from pointbridge_ecomail.client import AUTH_MESSAGE
from pointbridge_ecomail.fake import SERVER_OPTIONS, FakeEcomail, create_app
from pointbridge_ecomail.fields import CATALOG, field_names
from sqlalchemy import func, select

from pointbridge.delivery.worker import Backoff
from pointbridge.storage.models import LedgerEntry, OutboxMessage
from pointbridge.testing import FakeServer
from pointbridge.testing.e2e import Pointbridge

NAME = "eco"
SHOP_ZONE = ZoneInfo("Europe/Prague")
PREFIX = "ellity_"
API_KEY = "eco-e2e-key-5c1d"
LIST_ID = "1"
# Customers join it themselves: pointbridge syncs into LIST_ID, which can carry no reward.
REWARDED_LIST = "2"


@pytest.fixture(autouse=True)
def pacer() -> None:
    """Overrides the unit tests' recording pacer: end to end runs the real shared budget."""


Shop = tuple[FakeEcomail, FakeServer, Pointbridge]


@contextmanager
def running(tmp_path: Path, database_url: str, **server: Any) -> Iterator[Shop]:
    account = FakeEcomail(api_key=API_KEY)
    account.add_list("Newsletter", LIST_ID)
    account.add_list("Loyalty club", REWARDED_LIST)
    with (
        FakeServer(create_app(account), **SERVER_OPTIONS, **server) as api,
        Pointbridge(tmp_path, database_url=database_url) as pb,
    ):
        yield account, api, pb


@pytest.fixture
def shop(tmp_path: Path, database_url: str) -> Iterator[Shop]:
    """pointbridge with the integration added and installed, against a fresh fake Ecomail."""
    with running(tmp_path, database_url) as (account, api, pb):
        add(pb, api)
        yield account, api, pb


def add(pb: Pointbridge, api: FakeServer, api_key: str = API_KEY) -> str:
    """``pointbridge integrations add`` pointed at the fake; returns the CLI's output."""
    return pb.add_integration(
        NAME,
        "ecomail",
        {"api_url": api.url, "api_key": api_key, "list_id": LIST_ID},
        exit_code=0 if api_key == API_KEY else 1,
    )


def expected_fields(customer: dict[str, Any]) -> dict[str, Any]:
    """What the Ecomail list should hold for a customer as the REST API shows it."""

    def day(value: str | None) -> str | None:
        # A moment is dated by the shop's clock (the default zone, Europe/Prague), not UTC's;
        # a date is a day already.
        if not value:
            return None
        moment = datetime.fromisoformat(value)
        return (moment.astimezone(SHOP_ZONE) if moment.tzinfo else moment).strftime("%Y-%m-%d")

    last_change = customer["last_change_points"]
    return {
        f"{PREFIX}credit": str(customer["balance"]),
        f"{PREFIX}credit_num": customer["balance"],
        # The REST API keeps showing a registered customer's PIN; the platform's field is
        # for unregistered customers' PINs only.
        f"{PREFIX}pin": "" if customer["registered"] else customer["pin"] or "",
        f"{PREFIX}registered": "1" if customer["registered"] else "0",
        f"{PREFIX}next_expiration_date": day(customer["next_expiration_date"]),
        f"{PREFIX}next_expiration_value": str(customer["next_expiration_points"]),
        f"{PREFIX}next_expiration_value_num": customer["next_expiration_points"],
        f"{PREFIX}last_change_date": day(customer["last_change_at"]),
        f"{PREFIX}last_change_value": "" if last_change is None else str(last_change),
        f"{PREFIX}referral_code": customer["referral_code"],
        f"{PREFIX}referral_link": customer["referral_link"],
        f"{PREFIX}lifetime_points": customer["lifetime_points"],
        f"{PREFIX}tier_expires_at": day(customer["tier_expires_at"]),
        f"{PREFIX}points_to_next_tier": customer["points_to_next_tier"],
    }


def fields_of(account: FakeEcomail, email: str) -> dict[str, Any]:
    with account.lock:
        return dict(account.contacts[email]["custom_fields"])


def events_of(account: FakeEcomail, email: str) -> list[tuple[str, dict[str, Any]]]:
    """(label, value) of every tracker event of one contact, oldest first; the value without
    its ``event_id`` (unique per event: test_ecomail_redelivery.py checks it)."""
    assert all(
        (e["category"], e["action"]) == ("ellity", "change") for e in account.events_for(email)
    )
    return [
        (e["label"], {k: v for k, v in json.loads(e["value"]).items() if k != "event_id"})
        for e in account.events_for(email)
    ]


def subscription(
    email: str, status: str = "SUBSCRIBED", list_id: str = REWARDED_LIST
) -> dict[str, Any]:
    payload = {"email": email, "status": status, "listId": int(list_id), "campaignId": None}
    return {"payload": payload}


def test_activation_checks_the_key_and_the_first_sync_creates_the_fields_once(
    tmp_path: Path,
    database_url: str,
) -> None:
    with running(tmp_path, database_url) as (account, api, pb):
        refused = add(pb, api, api_key="not-the-key")
        assert AUTH_MESSAGE in refused
        assert "not-the-key" not in refused
        assert {r.method for r in api.requests} == {"GET"}
        assert account.contacts == {} and account.lists[LIST_ID].custom_fields == {}
        assert "failing" in pb.cli("integrations", "list")

        pb.cli("integrations", "set", NAME, f"api_key={API_KEY}")
        first = pb.cli("integrations", "install", NAME)
        assert f"{NAME} is active" in first
        # Ecomail's API cannot define a field; install says so instead of writing a dummy
        # contact, and the first sync brings every field in, typed.
        assert "at the first sync" in first
        assert account.contacts == {} and account.bulk_calls == []
        pb.create_customer("jana@example.com")
        pb.deliver()
        types = {k: v["type"] for k, v in account.lists[LIST_ID].custom_fields.items()}
        assert set(types) == set(field_names(PREFIX))
        assert types[f"{PREFIX}credit_num"] == "int"
        assert types[f"{PREFIX}next_expiration_date"] == "date"
        assert types[f"{PREFIX}credit"] == "string"
        assert types[f"{PREFIX}lifetime_points"] == "int"
        assert types[f"{PREFIX}tier_expires_at"] == "date"

        api.clear()
        again = pb.cli("integrations", "install", NAME)
        assert f"{len(CATALOG)} loyalty field(s) already there" in again
        assert "first sync" not in again
        assert len(account.lists[LIST_ID].custom_fields) == len(CATALOG) == 14
        assert list(account.contacts) == ["jana@example.com"]
        assert {r.method for r in api.requests} == {"GET"}


def test_a_customer_credited_through_the_api_reaches_ecomail_with_every_field(shop: Shop) -> None:
    expires = date.today() + timedelta(days=30)
    account, _api, pb = shop
    created = pb.create_customer(
        "jana@example.com", first_name="Jana", last_name="Nová", marketing_consent=True
    )
    pb.transaction(created["id"], 120, "order", expires_at=expires)
    pb.transaction(created["id"], -20, "manual")
    pb.deliver()

    customer = pb.customer(created["id"])
    values = fields_of(account, "jana@example.com")
    assert values == expected_fields(customer)
    assert values[f"{PREFIX}credit"] == "100" and values[f"{PREFIX}credit_num"] == 100
    assert values[f"{PREFIX}next_expiration_date"] == expires.isoformat()
    # The debit took 20 of the 120 expiring points: 100 are left to expire that day.
    assert values[f"{PREFIX}next_expiration_value_num"] == 100
    assert values[f"{PREFIX}last_change_value"] == "-20"
    assert values[f"{PREFIX}referral_link"].endswith(customer["referral_code"])
    assert account.contacts["jana@example.com"]["name"] == "Jana"
    assert account.status(LIST_ID, "jana@example.com") == 1
    assert events_of(account, "jana@example.com") == [
        ("credit", {"points": 120, "balance": 120, "reason": "order"}),
        ("credit", {"points": -20, "balance": 100, "reason": "manual"}),
    ]
    # No sync may resubscribe anybody or fire "new subscriber" automations.
    assert {(c["resubscribe"], c["trigger_autoresponders"]) for c in account.bulk_calls} == {
        (False, False)
    }

    pin = pb.set_pin(created["id"], "4821")
    pb.deliver()
    assert fields_of(account, "jana@example.com")[f"{PREFIX}pin"] == "4821"
    assert events_of(account, "jana@example.com")[-1] == ("pin", {"pin": pin})

    # The field holds the PIN of an unregistered customer: registering empties it.
    pb.update_customer(created["id"], registered=True)
    pb.deliver()
    values = fields_of(account, "jana@example.com")
    assert (values[f"{PREFIX}pin"], values[f"{PREFIX}registered"]) == ("", "1")
    assert values == expected_fields(pb.customer(created["id"]))


def test_an_event_for_a_contact_ecomail_does_not_know_yet_is_retried_not_lost(shop: Shop) -> None:
    expires = date.today() + timedelta(days=20)
    account, api, pb = shop
    pb.cli("integrations", "set", NAME, "expiry_notice_days=7")
    customer = pb.create_customer("ola@example.com", marketing_consent=True)
    pb.transaction(customer["id"], 30, "order", expires_at=expires)
    pb.deliver()
    # Gone from the list (deleted in Ecomail, or an import not finished there yet): the
    # expiry notice, an event with no contact update before it, meets an unknown contact.
    with account.lock:
        del account.lists[LIST_ID].members["ola@example.com"]
    pb.cli("expiry", "run", "--date", (expires - timedelta(days=7)).isoformat())

    # A backoff longer than the round: one attempt, however slow the machine.
    pb.services.worker(backoff=Backoff(base=600)).run_once()
    assert [r.status for r in api.requests_to("POST", "/tracker/events")][-1] == 404
    with pb.services.db.transaction() as session:
        waiting = session.scalars(
            select(OutboxMessage).where(OutboxMessage.status == "pending")
        ).all()
        assert [(m.event_type, m.attempts) for m in waiting] == [("credit-expires", 1)]
        assert "not an Ecomail subscriber yet" in (waiting[0].last_error or "")
        for message in waiting:  # the backoff has passed
            message.next_attempt_at = datetime.now(UTC)
    assert pb.dead() == 0

    # The customer's next change brings the contact back; the notice follows it.
    pb.transaction(customer["id"], 5, "review")
    pb.deliver()
    assert pb.dead() == 0
    assert [label for label, _ in events_of(account, "ola@example.com")] == [
        "credit",
        "expiry",
        "credit",
    ]
    assert account.status(LIST_ID, "ola@example.com") == 1


def test_list_webhook_credits_once_and_unsubscribe_takes_the_points_back(shop: Shop) -> None:
    account, _api, pb = shop
    pb.cli("integrations", "set", NAME, f"list_rewards={REWARDED_LIST}:50")
    customer = pb.create_customer("eva@example.com")
    pb.transaction(customer["id"], 10, "registration")
    pb.deliver()

    joined = pb.webhook(NAME, json=subscription("eva@example.com"))
    assert joined.status_code == 200, joined.text
    assert "+50 points" in joined.json()["message"]
    duplicate = pb.webhook(NAME, json=subscription("eva@example.com"))
    assert duplicate.status_code == 200
    assert "nothing changed" in duplicate.json()["message"]
    assert pb.customer(customer["id"])["balance"] == 60
    pb.deliver()
    assert fields_of(account, "eva@example.com")[f"{PREFIX}credit_num"] == 60
    credits = [value for label, value in events_of(account, "eva@example.com")]
    assert credits[1:] == [{"points": 50, "balance": 60, "reason": "subscription"}]

    left = pb.webhook(NAME, json=subscription("eva@example.com", "UNSUBSCRIBED"))
    assert left.status_code == 200, left.text
    assert pb.customer(customer["id"])["balance"] == 10
    pb.deliver()
    assert fields_of(account, "eva@example.com")[f"{PREFIX}credit_num"] == 10
    assert events_of(account, "eva@example.com")[-1] == (
        "credit",
        {"points": -50, "balance": 10, "reason": "subscription"},
    )


def test_a_wrong_webhook_url_or_a_malformed_body_changes_nothing(shop: Shop) -> None:
    _account, api, pb = shop
    pb.cli("integrations", "set", NAME, f"list_rewards={REWARDED_LIST}:50")
    customer = pb.create_customer("eva@example.com")
    pb.deliver()
    api.clear()

    # Ecomail signs nothing: the token in the URL is the webhook's only secret.
    url = pb.webhook_url(NAME)
    guessed = url[: url.rindex("/") + 1] + "guessed-token"
    refused = requests.post(guessed, json=subscription("eva@example.com"), timeout=30)
    assert refused.status_code == 401
    assert "Unknown webhook URL" in refused.json()["message"]
    malformed = pb.webhook(NAME, json={"email": "eva@example.com", "status": "SUBSCRIBED"})
    assert malformed.status_code == 400
    assert '"payload"' in malformed.json()["message"]
    assert "SUBSCRIBED or UNSUBSCRIBED" in malformed.json()["hint"]
    assert pb.customer(customer["id"])["balance"] == 0
    assert pb.pending() == 0
    pb.deliver()
    assert api.requests == []
    # The same subscription at the right URL and in the right shape is taken.
    assert pb.webhook(NAME, json=subscription("eva@example.com")).status_code == 200
    assert pb.customer(customer["id"])["balance"] == 50


def ledger_size(pb: Pointbridge) -> int:
    with pb.services.db.transaction() as session:
        return session.scalar(select(func.count(LedgerEntry.id))) or 0


def test_pointbridges_own_export_coming_back_through_the_webhook_credits_nobody(shop: Shop) -> None:
    account, _api, pb = shop
    refused = pb.cli("integrations", "set", NAME, f"list_rewards={LIST_ID}:50", exit_code=1)
    assert f"Ecomail list {LIST_ID}" in refused and "Reward a different list" in refused
    # A reward set on the synced list before pointbridge refused one.
    with pb.services.db.transaction() as session:
        pb.services.integrations.get(session, NAME).list_rewards = {LIST_ID: 50}
    pb.seed_customers(25, points=10, marketing_consent=True)
    before = ledger_size(pb)
    assert "25 customers sent, 0 refused" in pb.cli("export", NAME)

    # Ecomail calls a list's webhook for subscriptions made through its API too.
    with account.lock:
        subscribed = [e for e, status in account.lists[LIST_ID].members.items() if status == 1]
    assert len(subscribed) == 25
    for email in subscribed:
        echo = pb.webhook(NAME, json=subscription(email, list_id=LIST_ID))
        assert echo.status_code == 200, echo.text
        assert "pointbridge writes to itself" in echo.json()["message"]
    assert ledger_size(pb) == before
    assert pb.pending() == 0


def test_export_points_writes_every_customer_as_a_csv_for_ecomails_import(
    shop: Shop, tmp_path: Path
) -> None:
    _account, api, pb = shop
    pb.seed_customers(25, points=10)
    api.clear()
    path = tmp_path / "ecomail.csv"
    assert "wrote 25 customers" in pb.cli("export", NAME, "--csv", str(path))
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames == ["email", *field_names(PREFIX)]
    assert [row["email"] for row in rows] == [f"customer{n}@example.com" for n in range(25)]
    last = rows[-1]
    assert (last[f"{PREFIX}credit"], last[f"{PREFIX}credit_num"]) == ("10", "10")
    assert last[f"{PREFIX}referral_code"] == "SEED00000024"
    assert last[f"{PREFIX}referral_link"].endswith("SEED00000024")
    assert api.requests == []  # a file for the shop to import, nothing sent


def test_a_list_id_cleared_after_install_pauses_the_integration_and_keeps_the_rows(
    shop: Shop,
) -> None:
    account, _api, pb = shop
    # Installing again at once asks for a list and says the one command to run.
    out = pb.cli("integrations", "set", NAME, "list_id=", exit_code=1)
    assert f"pick one: pointbridge integrations set {NAME} list_id=VALUE" in out
    pb.create_customer("jana@example.com")
    pb.worker.run_once()

    shown = pb.cli("integrations", "show", NAME)
    assert "status: failing" in shown and "No Ecomail list is chosen" in shown
    assert pb.dead() == 0 and pb.pending(NAME) > 0
    assert account.contacts == {}


# Marketing consent: Ecomail keeps custom fields per list, so every customer is in the list;
# one without consent is added with status 2 (unsubscribed), and a status already there is kept.


def test_a_customer_without_consent_is_in_the_list_unsubscribed_one_with_consent_subscribed(
    shop: Shop,
) -> None:
    account, _api, pb = shop
    quiet = pb.create_customer("quiet@example.com")
    pb.create_customer("keen@example.com", marketing_consent=True)
    pb.transaction(quiet["id"], 30, "order")
    pb.deliver()

    assert account.status(LIST_ID, "quiet@example.com") == 2
    assert account.contacts["quiet@example.com"]["custom_fields"][f"{PREFIX}credit"] == "30"
    assert [label for label, _ in events_of(account, "quiet@example.com")] == ["credit"]
    assert account.status(LIST_ID, "keen@example.com") == 1


def test_statuses_in_the_list_are_kept_whatever_the_consent(shop: Shop) -> None:
    account, _api, pb = shop
    account.add_subscriber(LIST_ID, "left@example.com", status=2)
    account.add_subscriber(LIST_ID, "fan@example.com", status=1)
    left = pb.create_customer("left@example.com", marketing_consent=True)
    fan = pb.create_customer("fan@example.com")
    pb.transaction(left["id"], 10, "order")
    pb.transaction(fan["id"], 20, "order")
    pb.deliver()

    assert account.status(LIST_ID, "left@example.com") == 2
    assert account.contacts["left@example.com"]["custom_fields"][f"{PREFIX}credit"] == "10"
    assert account.status(LIST_ID, "fan@example.com") == 1
    assert account.contacts["fan@example.com"]["custom_fields"][f"{PREFIX}credit"] == "20"
    assert all(call["resubscribe"] is False for call in account.bulk_calls)
