"""SmartEmailing end to end: the whole pointbridge host (REST API, CLI, webhooks, worker, export)
over real HTTP against the fake SmartEmailing, checking what a shop would see in its account.
Throttling (a 429 naming no wait too), faults, the big export, the first activation and
corrected credentials are the stories every plugin passes (test_smartemailing_contract.py);
these are SmartEmailing's own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from pointbridge_smartemailing.client import AUTH_MESSAGE
from pointbridge_smartemailing.fake import SERVER_OPTIONS, FakeSmartEmailing, create_app
from pointbridge_smartemailing.mapping import wanted_fields
from pointbridge_smartemailing.webhooks import paste_body
from sqlalchemy import func, select

from pointbridge.storage.models import LedgerEntry
from pointbridge.testing import FakeServer
from pointbridge.testing.e2e import Pointbridge

NAME = "se"
SHOP_ZONE = ZoneInfo("Europe/Prague")
PREFIX = "ellity_"
# SmartEmailing's own example webhook body, as shops paste it: no comma after the e-mail and
# "listd" for "listId".
VENDOR_EXAMPLE = (
    '{"eventName": "subscribed", "data": {"email": "{{ df_emailaddress }}" "listd": "1"}}'
)


@pytest.fixture(autouse=True)
def pacer() -> None:
    """Overrides the unit tests' recording pacer: end to end runs the real shared budget."""


@contextmanager
def running(
    tmp_path: Path, database_url: str, **server: Any
) -> Iterator[tuple[FakeSmartEmailing, FakeServer, Pointbridge]]:
    fake = FakeSmartEmailing(contactlists={1: "Newsletter"})
    with (
        FakeServer(create_app(fake), **SERVER_OPTIONS, **server) as api,
        Pointbridge(tmp_path, database_url=database_url) as pb,
    ):
        yield fake, api, pb


def add(pb: Pointbridge, fake: FakeSmartEmailing, api: FakeServer, **settings: str) -> str:
    """``pointbridge integrations add`` pointed at the fake; returns the CLI's output."""
    values = {"api_url": api.url, "username": fake.username, "api_key": fake.api_key, **settings}
    exit_code = 0 if settings.get("api_key", fake.api_key) == fake.api_key else 1
    return pb.add_integration(NAME, "smartemailing", values, exit_code=exit_code)


def connected(pb: Pointbridge, fake: FakeSmartEmailing, api: FakeServer) -> None:
    """An active integration whose fields already exist in the account (a shop reconnecting).

    Install then only reads them: creating thirteen fields at SmartEmailing's 5 requests a second
    would add two seconds to every test; creating them is what the activation test covers.
    """
    for spec in wanted_fields(PREFIX):
        fake.add_customfield(spec.name, spec.type)
    add(pb, fake, api)


Shop = tuple[FakeSmartEmailing, FakeServer, Pointbridge]


@pytest.fixture
def shop(tmp_path: Path, database_url: str) -> Iterator[Shop]:
    """pointbridge connected to a fresh fake account whose fields already exist."""
    with running(tmp_path, database_url) as (fake, api, pb):
        connected(pb, fake, api)
        yield fake, api, pb


@pytest.fixture
def rewarding(shop: Shop) -> Shop:
    """The same, with 50 points for joining list 1 (the shop's "change in list" automation)."""
    shop[2].cli("integrations", "set", NAME, "list_rewards=1:50")
    return shop


def expected_fields(customer: dict[str, Any]) -> dict[str, str | None]:
    """What SmartEmailing should hold for a customer as the REST API shows it."""

    def stamp(value: str | None) -> str | None:
        if not value:
            return None
        # A moment is dated by the shop's clock (the default zone, Europe/Prague), not UTC's;
        # a date is a day already.
        moment = datetime.fromisoformat(value)
        if moment.tzinfo:
            moment = moment.astimezone(SHOP_ZONE)
        return moment.strftime("%Y-%m-%d %H:%M:%S")

    last_change = customer["last_change_points"]
    return {
        f"{PREFIX}credit": str(customer["balance"]),
        f"{PREFIX}credit_num": str(customer["balance"]),
        # The REST API keeps showing a registered customer's PIN; the platform's field is
        # for unregistered customers' PINs only.
        f"{PREFIX}pin": "" if customer["registered"] else customer["pin"] or "",
        f"{PREFIX}registered": "1" if customer["registered"] else "0",
        f"{PREFIX}next_expiration_date": stamp(customer["next_expiration_date"]),
        f"{PREFIX}next_expiration_value": str(customer["next_expiration_points"]),
        f"{PREFIX}last_change_date": stamp(customer["last_change_at"]),
        f"{PREFIX}last_change_value": "" if last_change is None else str(last_change),
        f"{PREFIX}referral_code": customer["referral_code"],
        f"{PREFIX}referral_link": customer["referral_link"],
        f"{PREFIX}lifetime_points": str(customer["lifetime_points"]),
        f"{PREFIX}tier_expires_at": stamp(customer["tier_expires_at"]),
        f"{PREFIX}points_to_next_tier": ""
        if customer["points_to_next_tier"] is None
        else str(customer["points_to_next_tier"]),
    }


def events_of(fake: FakeSmartEmailing, email: str) -> list[tuple[str, dict[str, Any]]]:
    """(name, payload) of one contact's events, the payload without its ``event_id`` (unique
    per event: test_smartemailing_redelivery.py checks it)."""
    with fake.lock:
        return [
            (e["name"], {k: v for k, v in e["payload"].items() if k != "event_id"})
            for e in fake.events
            if e["emailaddress"] == email
        ]


def subscription(email: str, event: str = "subscribed", list_id: str = "1") -> bytes:
    return json.dumps({"eventName": event, "data": {"email": email, "listId": list_id}}).encode()


def post_webhook(pb: Pointbridge, body: bytes, secret: str | None = None) -> Any:
    return pb.webhook(
        NAME,
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Secret-Key": pb.webhook_secret(NAME) if secret is None else secret,
        },
    )


def test_activation_checks_the_login_creates_the_fields_once_and_reuses_them(
    tmp_path: Path,
    database_url: str,
) -> None:
    with running(tmp_path, database_url) as (fake, api, pb):
        refused = add(pb, fake, api, api_key="not-the-key")
        assert AUTH_MESSAGE in refused
        assert "not-the-key" not in refused
        assert fake.customfields == {}
        assert [(r.method, r.path) for r in api.requests] == [("GET", "/check-credentials")]
        assert "failing" in pb.cli("integrations", "list")

        # The right key is checked at once: setting it installs.
        first = pb.cli("integrations", "set", NAME, f"api_key={fake.api_key}")
        assert "13 custom fields created, 0 reused" in first
        assert f"{NAME} is active" in first
        assert sorted((f["name"], f["type"]) for f in fake.customfields.values()) == sorted(
            (spec.name, spec.type) for spec in wanted_fields(PREFIX)
        )

        api.clear()
        again = pb.cli("integrations", "install", NAME)
        assert "0 custom fields created, 13 reused" in again
        assert len(fake.customfields) == 13
        assert api.requests_to("POST", "/customfields") == []


def test_a_customer_credited_through_the_api_reaches_smartemailing_with_every_field(
    shop: Shop,
) -> None:
    expires = date.today() + timedelta(days=30)
    fake, api, pb = shop
    created = pb.create_customer("jana@example.com", first_name="Jana", last_name="Nová")
    pb.transaction(created["id"], 120, "order", expires_at=expires)
    pb.transaction(created["id"], -20, "manual")
    pb.deliver()

    customer = pb.customer(created["id"])
    assert fake.field_values("jana@example.com") == expected_fields(customer)
    values = fake.field_values("jana@example.com")
    assert values[f"{PREFIX}credit"] == values[f"{PREFIX}credit_num"] == "100"
    assert values[f"{PREFIX}next_expiration_date"] == f"{expires} 00:00:00"
    # The debit took 20 of the 120 expiring points: 100 are left to expire that day.
    assert values[f"{PREFIX}next_expiration_value"] == "100"
    assert values[f"{PREFIX}last_change_value"] == "-20"
    assert values[f"{PREFIX}referral_link"].endswith(customer["referral_code"])
    contact = fake.contacts["jana@example.com"]
    assert (contact.name, contact.surname) == ("Jana", "Nová")
    assert events_of(fake, "jana@example.com") == [
        ("ellity-credit-changed", {"points": 120, "balance": 120, "reason": "order"}),
        ("ellity-credit-changed", {"points": -20, "balance": 100, "reason": "manual"}),
    ]
    # The fields went before the events, so an automation reads the new balance.
    paths = [r.path for r in api.requests if r.status < 300]
    assert paths.index("/import") < paths.index("/trigger-event")

    pin = pb.set_pin(created["id"], "4821")
    pb.deliver()
    assert fake.field_values("jana@example.com")[f"{PREFIX}pin"] == "4821"
    assert events_of(fake, "jana@example.com")[-1] == ("ellity-pin-changed", {"pin": pin})

    # The field holds the PIN of an unregistered customer: registering empties it.
    pb.update_customer(created["id"], registered=True)
    pb.deliver()
    values = fake.field_values("jana@example.com")
    assert (values[f"{PREFIX}pin"], values[f"{PREFIX}registered"]) == ("", "1")
    assert values == expected_fields(pb.customer(created["id"]))


def test_expiry_notice_goes_out_once_seven_days_ahead(shop: Shop) -> None:
    expires = date.today() + timedelta(days=40)
    fake, _api, pb = shop
    pb.cli("integrations", "set", NAME, "expiry_notice_days=7")
    customer = pb.create_customer("petr@example.com")
    pb.transaction(customer["id"], 80, "review", expires_at=expires)
    pb.transaction(customer["id"], 15, "order")  # never expires: not in the notice
    pb.deliver()

    notice_day = (expires - timedelta(days=7)).isoformat()
    pb.cli("expiry", "run", "--date", notice_day)
    pb.deliver()
    pb.cli("expiry", "run", "--date", notice_day)
    pb.deliver()

    notices = [e for e in events_of(fake, "petr@example.com") if "expires" in e[0]]
    assert notices == [
        (
            "ellity-credit-expires",
            {"points": 80, "expiration_date": expires.isoformat(), "days_before": 7},
        )
    ]
    assert pb.customer(customer["id"])["balance"] == 95


def test_list_subscription_webhook_credits_once_and_unsubscribe_takes_the_points_back(
    rewarding: Shop,
) -> None:
    fake, _api, pb = rewarding
    customer = pb.create_customer("eva@example.com")
    pb.transaction(customer["id"], 10, "registration")
    pb.deliver()

    joined = post_webhook(pb, subscription("eva@example.com"))
    assert joined.status_code == 200, joined.text
    assert "+50 points" in joined.json()["message"]
    duplicate = post_webhook(pb, subscription("eva@example.com"))
    assert duplicate.status_code == 200
    assert "nothing changed" in duplicate.json()["message"]
    assert pb.customer(customer["id"])["balance"] == 60
    pb.deliver()
    assert fake.field_values("eva@example.com")[f"{PREFIX}credit"] == "60"
    changes = [p for n, p in events_of(fake, "eva@example.com") if n.endswith("changed")]
    assert changes[-1] == {"points": 50, "balance": 60, "reason": "subscription"}
    assert len(changes) == 2  # registration and one subscription, not two

    left = post_webhook(pb, subscription("eva@example.com", "unsubscribed"))
    assert left.status_code == 200, left.text
    assert pb.customer(customer["id"])["balance"] == 10
    pb.deliver()
    assert fake.field_values("eva@example.com")[f"{PREFIX}credit"] == "10"
    changes = [p for n, p in events_of(fake, "eva@example.com") if n.endswith("changed")]
    assert changes[-1] == {"points": -50, "balance": 10, "reason": "subscription"}


def test_the_vendors_broken_example_body_is_refused_with_the_fix(rewarding: Shop) -> None:
    _fake, _api, pb = rewarding
    customer = pb.create_customer("eva@example.com")
    pb.deliver()

    answer = post_webhook(pb, VENDOR_EXAMPLE.encode())
    assert answer.status_code == 400
    body = answer.json()
    assert "not valid JSON" in body["message"]
    assert "missing the comma" in body["message"]
    assert "listd" in body["message"]
    assert body["hint"] == paste_body("subscribed", "1")
    # The hint really is a body that works.
    fixed = body["hint"].replace("{{ df_emailaddress }}", "eva@example.com").encode()
    assert post_webhook(pb, fixed).status_code == 200
    assert pb.customer(customer["id"])["balance"] == 50


def test_a_wrong_secret_key_is_refused_and_changes_nothing(rewarding: Shop) -> None:
    _fake, api, pb = rewarding
    customer = pb.create_customer("eva@example.com")
    pb.deliver()
    api.clear()

    answer = post_webhook(pb, subscription("eva@example.com"), secret="guessed-secret")
    assert answer.status_code == 401
    assert "X-Secret-Key" in answer.json()["message"]
    missing = pb.webhook(NAME, data=subscription("eva@example.com"))
    assert missing.status_code == 401
    # A probe of the URL, as some set-ups send before saving it, needs no secret.
    assert requests.head(pb.webhook_url(NAME), timeout=30).status_code == 200
    assert pb.customer(customer["id"])["balance"] == 0
    assert pb.pending() == 0
    pb.deliver()
    assert api.requests == []


def test_pointbridges_own_export_coming_back_through_the_list_automation_credits_nobody(
    rewarding: Shop,
) -> None:
    fake, _api, pb = rewarding
    # Syncing into the rewarded list afterwards is refused just the same.
    refused = pb.cli("integrations", "set", NAME, "contact_list_id=1", exit_code=1)
    assert "SmartEmailing list 1" in refused and "Reward a different list" in refused
    # A set-up from before pointbridge refused it.
    with pb.services.db.transaction() as session:
        row = pb.services.integrations.get(session, NAME)
        row.settings = {**row.settings, "contact_list_id": 1}
    pb.seed_customers(25, points=10, marketing_consent=True)
    with pb.services.db.transaction() as session:
        ledger = session.scalar(select(func.count(LedgerEntry.id)))
    assert "25 customers sent, 0 refused" in pb.cli("export", NAME)

    # The shop's "change in list" automation fires for pointbridge's imports as well.
    with fake.lock:
        added = [c.emailaddress for c in fake.contacts.values() if 1 in c.contactlists]
    assert len(added) == 25
    for email in added:
        echo = post_webhook(pb, subscription(email))
        assert echo.status_code == 200, echo.text
        assert "pointbridge writes to itself" in echo.json()["message"]
    with pb.services.db.transaction() as session:
        assert session.scalar(select(func.count(LedgerEntry.id))) == ledger
    assert pb.pending() == 0


# Marketing consent: a customer who did not agree is stored with their loyalty fields and no
# list; one who did is confirmed on the list; a contact who unsubscribed stays unsubscribed.
CONSENT_LIST = 1


@pytest.fixture
def listed(shop: Shop) -> Shop:
    """The shop syncing into list 1."""
    shop[2].cli("integrations", "set", NAME, f"contact_list_id={CONSENT_LIST}")
    return shop


def lists_of(shop: Shop, email: str) -> dict[int, str]:
    fake = shop[0]
    with fake.lock:
        return dict(fake.contacts[email].contactlists)


def test_without_consent_the_contact_gets_its_fields_and_no_list(listed: Shop) -> None:
    fake, _, pb = listed
    pb.create_customer("jana@example.com")
    pb.deliver()
    assert lists_of(listed, "jana@example.com") == {}
    assert fake.field_values("jana@example.com")[f"{PREFIX}credit"] == "0"


def test_with_consent_the_contact_is_confirmed_on_the_list(listed: Shop) -> None:
    _, _, pb = listed
    pb.create_customer("jana@example.com", marketing_consent=True)
    pb.deliver()
    assert lists_of(listed, "jana@example.com") == {CONSENT_LIST: "confirmed"}


def test_consent_given_later_subscribes_and_withdrawn_leaves_the_list_status_alone(
    listed: Shop,
) -> None:
    _, _, pb = listed
    customer = pb.create_customer("jana@example.com")
    pb.deliver()
    pb.update_customer(customer["id"], marketing_consent=True)
    pb.deliver()
    assert lists_of(listed, "jana@example.com") == {CONSENT_LIST: "confirmed"}
    # Unsubscribing is the contact's own act on the platform (its link, its form).
    pb.update_customer(customer["id"], marketing_consent=False, first_name="Jana")
    pb.deliver()
    assert lists_of(listed, "jana@example.com") == {CONSENT_LIST: "confirmed"}


def test_an_unsubscribed_contact_stays_unsubscribed_after_an_update(listed: Shop) -> None:
    fake, _, pb = listed
    fake.add_contact("jana@example.com", {CONSENT_LIST: "unsubscribed"})
    customer = pb.create_customer("jana@example.com", marketing_consent=True)
    pb.transaction(customer["id"], 50, "order")
    pb.deliver()
    assert lists_of(listed, "jana@example.com") == {CONSENT_LIST: "unsubscribed"}
    assert fake.field_values("jana@example.com")[f"{PREFIX}credit"] == "50"
