"""The ledger: FIFO lot consumption, no negative balance, idempotent references, atomic outbox."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from pointbridge.delivery.snapshots import contact_page
from pointbridge.loyalty.rules import Conflict, InsufficientPoints, LoyaltyError
from pointbridge.services import Services
from pointbridge.storage.models import Customer, LedgerEntry, OutboxMessage, PointLot


def _add_jsonl(services: Services, tmp_path) -> None:
    with services.db.transaction() as session:
        services.integrations.add(session, "dry", "jsonl", {"path": str(tmp_path / "o.jsonl")})


def _customer(services: Services, email: str = "jana@example.com") -> Customer:
    with services.db.transaction() as session:
        return services.loyalty.create_customer(session, {"email": email})


def _post(
    services: Services, customer: Customer, points: int, **kwargs
) -> tuple[LedgerEntry, bool]:
    with services.db.transaction() as session:
        return services.loyalty.post_transaction(
            session,
            session.get(Customer, customer.id),
            points,
            kwargs.pop("reason", "order"),
            **kwargs,
        )


def _lots(services: Services, customer: Customer) -> list[tuple[date | None, int]]:
    with services.db.transaction() as session:
        return [
            (lot.expires_on, lot.remaining)
            for lot in session.scalars(
                select(PointLot).where(PointLot.customer_id == customer.id).order_by(PointLot.id)
            )
        ]


def test_debits_consume_the_lots_that_expire_first(services: Services) -> None:
    customer = _customer(services)
    soon, later = date.today() + timedelta(days=10), date.today() + timedelta(days=100)
    _post(services, customer, 100, expires_on=later)
    _post(services, customer, 50)  # never expires
    _post(services, customer, 30, expires_on=soon)

    _post(services, customer, -60)

    assert _lots(services, customer) == [(later, 70), (None, 50), (soon, 0)]
    _post(services, customer, -100)
    assert _lots(services, customer) == [(later, 0), (None, 20), (soon, 0)]


def test_balance_never_goes_below_zero_and_the_refusal_states_it(services: Services) -> None:
    customer = _customer(services)
    _post(services, customer, 40)
    with pytest.raises(InsufficientPoints) as refused:
        _post(services, customer, -41)
    assert refused.value.status == 409
    assert "40" in refused.value.message
    with services.db.transaction() as session:
        assert session.get(Customer, customer.id).balance == 40
        assert session.scalar(select(func.count(LedgerEntry.id))) == 1


def test_balance_equals_the_sum_of_the_ledger(services: Services) -> None:
    customer = _customer(services)
    for points in (100, -30, 25, -95, 7):
        _post(services, customer, points)
    with services.db.transaction() as session:
        total = session.scalar(
            select(func.sum(LedgerEntry.points)).where(LedgerEntry.customer_id == customer.id)
        )
        assert session.get(Customer, customer.id).balance == total == 7
        assert session.get(Customer, customer.id).last_change_points == 7


def test_a_retried_reference_credits_once(services: Services) -> None:
    customer = _customer(services)
    first, created = _post(services, customer, 120, reference="order-1001")
    again, created_again = _post(services, customer, 120, reference="order-1001")
    assert created and not created_again
    assert again.id == first.id
    with pytest.raises(Conflict, match="order-1001"):
        _post(services, customer, 99, reference="order-1001")
    with services.db.transaction() as session:
        assert session.get(Customer, customer.id).balance == 120


def test_default_validity_sets_the_expiry_of_credits(services: Services) -> None:
    services.settings.points_validity_days = 365
    customer = _customer(services)
    entry, _ = _post(services, customer, 10)
    assert entry.expires_on == date.today() + timedelta(days=365)


@pytest.mark.parametrize(
    "points,reason",
    [(0, "order"), (5, "Not A Slug"), (5, ""), (10**9 + 1, "order"), (-(10**19), "order")],
)
def test_invalid_transactions_are_refused(services: Services, points: int, reason: str) -> None:
    customer = _customer(services)
    with pytest.raises(LoyaltyError):
        _post(services, customer, points, reason=reason)


def test_ledger_and_outbox_rows_commit_together_or_not_at_all(services: Services, tmp_path) -> None:
    _add_jsonl(services, tmp_path)
    customer = _customer(services)
    with services.db.transaction() as session:
        before = session.scalar(select(func.count(OutboxMessage.id)))

    with pytest.raises(RuntimeError), services.db.transaction() as session:
        services.loyalty.post_transaction(session, session.get(Customer, customer.id), 50, "order")
        assert session.scalar(select(func.count(OutboxMessage.id))) == before + 2
        raise RuntimeError("crash after the ledger write, before commit")

    with services.db.transaction() as session:
        assert session.scalar(select(func.count(LedgerEntry.id))) == 0
        assert session.scalar(select(func.count(OutboxMessage.id))) == before
        assert session.get(Customer, customer.id).balance == 0

    _post(services, customer, 50)
    with services.db.transaction() as session:
        kinds = session.execute(
            select(OutboxMessage.kind, OutboxMessage.event_type, OutboxMessage.payload).order_by(
                OutboxMessage.id
            )
        ).all()
    assert [(k, e) for k, e, _ in kinds[-2:]] == [("contact", None), ("event", "credit-changed")]
    assert kinds[-1][2] == {"points": 50, "balance": 50, "reason": "order"}


def test_disabled_integrations_get_nothing_queued(services: Services, tmp_path) -> None:
    _add_jsonl(services, tmp_path)
    with services.db.transaction() as session:
        services.integrations.disable(services.integrations.get(session, "dry"))
    customer = _customer(services)
    _post(services, customer, 5)
    with services.db.transaction() as session:
        assert session.scalar(select(func.count(OutboxMessage.id))) == 0


def test_setting_a_pin_queues_the_pin_event(services: Services, tmp_path) -> None:
    _add_jsonl(services, tmp_path)
    customer = _customer(services)
    with services.db.transaction() as session:
        pin = services.loyalty.set_pin(session, session.get(Customer, customer.id))
    assert len(pin) == 6 and pin.isdigit()
    with services.db.transaction() as session:
        event = session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "event").order_by(OutboxMessage.id)
        ).all()[-1]
    assert (event.event_type, event.payload) == ("pin-changed", {"pin": pin})


def test_emails_are_normalized_and_unique(services: Services) -> None:
    customer = _customer(services, "  Jana@Example.COM ")
    assert customer.email == "jana@example.com"
    with pytest.raises(Conflict):
        _customer(services, "JANA@example.com")
    with pytest.raises(LoyaltyError):
        _customer(services, "not-an-email")


@pytest.mark.parametrize(
    "email",
    [
        "jana\x00@example.com",  # PostgreSQL cannot store NUL
        "jana\ud83d@example.com",  # a lone surrogate: no database can encode it
        "jana\u202e@example.com",  # right-to-left override: looks like another address
        "jana\u200b@example.com",  # zero-width space
        "jana\x07@example.com",
    ],
)
def test_emails_with_invisible_or_unstorable_characters_are_refused(
    services: Services, email: str
) -> None:
    with pytest.raises(LoyaltyError, match="is not an e-mail address"):
        _customer(services, email)
    with services.db.read() as session:
        assert session.scalar(select(func.count(Customer.id))) == 0


def test_a_registered_customers_pin_is_sent_empty(services: Services) -> None:
    with services.db.transaction() as session:
        customer = services.loyalty.create_customer(
            session, {"email": "jana@example.com", "pin": "4321"}
        )

    def sent_pin() -> str | None:
        with services.db.read() as session:
            return contact_page(session, 0, 10, "https://shop.example/r/")[0].pin

    assert sent_pin() == "4321"
    with services.db.transaction() as session:
        services.loyalty.update_customer(
            session, services.loyalty.get(session, customer.id), {"registered": True}
        )
    # The PIN field holds the PIN of an unregistered customer: once registered, it is empty.
    assert sent_pin() is None


def test_a_registered_customers_new_pin_is_kept_but_sent_nowhere(
    client: FlaskClient, auth: dict[str, str], services: Services, tmp_path: Path
) -> None:
    """README: platforms get the PIN only while the customer is unregistered. A PIN set over
    REST for a registered customer is stored and answered, and queues nothing."""
    _add_jsonl(services, tmp_path)
    created = client.post(
        "/api/customers", json={"email": "jana@example.com", "registered": True}, headers=auth
    )
    with services.db.read() as session:
        queued = session.scalar(select(func.count(OutboxMessage.id)))

    answer = client.put(f"/api/customers/{created.json['id']}/pin", json={}, headers=auth)

    assert answer.status_code == 200 and len(answer.json["pin"]) == 6
    with services.db.read() as session:
        assert session.scalar(select(func.count(OutboxMessage.id))) == queued
        assert session.scalar(select(Customer.pin)) == answer.json["pin"]
