"""Customers, their points transactions, PINs and ledger."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask import jsonify
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select
from sqlalchemy.orm import Session

from pointbridge.delivery.snapshots import lifetime_points, next_expirations
from pointbridge.loyalty.ledger_sql import Entry
from pointbridge.loyalty.rules import normalize_email
from pointbridge.storage.models import Customer, LedgerEntry
from pointbridge.storage.sql import MAX_ID
from pointbridge.web.api.auth import require_token
from pointbridge.web.api.body import check_json_body, json_body
from pointbridge.web.api.lean import documented_as, transaction_body, transaction_out
from pointbridge.web.api.schemas import (
    CustomerCreate,
    CustomerOut,
    CustomerPage,
    CustomerQuery,
    CustomerUpdate,
    LedgerPage,
    PageQuery,
    PinIn,
    PinOut,
    TransactionIn,
    TransactionOut,
)
from pointbridge.web.services import services

# Larger ids cannot exist and would overflow the database's integer: a plain 404.
CUSTOMER_PATH = f"/customers/<int(max={MAX_ID}):customer_id>"
blp = Blueprint(
    "customers", __name__, description="Customers, points, PINs: what the shop's systems call."
)


@blp.before_request
def _require_token() -> None:
    require_token()
    check_json_body()


def _customer_out(session: Session, customers: list[Customer]) -> list[dict[str, Any]]:
    expiries = next_expirations(session, [c.id for c in customers])
    lifetimes = lifetime_points(session, [c.id for c in customers])
    prefix = services().settings.referral_prefix
    out = []
    for customer in customers:
        expiry = expiries.get(customer.id)
        out.append(
            {
                **{c.key: getattr(customer, c.key) for c in Customer.__table__.columns},
                "referral_link": prefix + customer.referral_code,
                "next_expiration_date": expiry[0] if expiry else None,
                "next_expiration_points": expiry[1] if expiry else 0,
                "lifetime_points": lifetimes.get(customer.id, 0),
            }
        )
    return out


def _one(session: Session, customer: Customer) -> dict[str, Any]:
    return _customer_out(session, [customer])[0]


@blp.route("/customers")
class Customers(MethodView):
    @blp.arguments(CustomerQuery, location="query")
    @blp.response(200, CustomerPage)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """List customers in id order (keyset pages), or find one by e-mail."""
        with services().db.read() as session:
            statement = select(Customer).where(Customer.id > query["after"])
            if "email" in query:
                statement = statement.where(Customer.email == normalize_email(query["email"]))
            customers = list(session.scalars(statement.order_by(Customer.id).limit(query["limit"])))
            items = _customer_out(session, customers)
        full = len(customers) == query["limit"]
        return {"items": items, "next_after": customers[-1].id if full else None}

    @blp.arguments(CustomerCreate)
    @blp.response(201, CustomerOut)
    @blp.alt_response(409, description="A customer with this e-mail or external id exists.")
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a customer."""
        with services().db.transaction() as session:
            customer = services().loyalty.create_customer(session, body)
            return _one(session, customer)


@blp.route(CUSTOMER_PATH)
class CustomerById(MethodView):
    @blp.response(200, CustomerOut)
    @blp.alt_response(404, description="No such customer.")
    def get(self, customer_id: int) -> dict[str, Any]:
        """One customer with balance, next expiration and last change."""
        with services().db.read() as session:
            return _one(session, services().loyalty.get(session, customer_id))

    @blp.arguments(CustomerUpdate)
    @blp.response(200, CustomerOut)
    @blp.alt_response(404, description="No such customer.")
    @blp.alt_response(409, description="The e-mail or external id belongs to another customer.")
    def patch(self, body: dict[str, Any], customer_id: int) -> dict[str, Any]:
        """Change profile fields, registration, VIP tier or counters."""
        loyalty = services().loyalty
        with services().db.transaction() as session:
            customer = loyalty.update_customer(session, loyalty.get(session, customer_id), body)
            return _one(session, customer)


@blp.arguments(TransactionIn)
@blp.response(201, TransactionOut)
@blp.alt_response(200, schema=TransactionOut, description="The reference was seen before.")
@blp.alt_response(404, description="No such customer.")
@blp.alt_response(409, description="Not enough points, or the reference was used otherwise.")
def _post_transaction_by_schema(
    body: dict[str, Any], customer_id: int
) -> tuple[dict[str, Any], int]:
    entry, created = _post_transaction(body, customer_id)
    return {**asdict(entry), "replayed": not created}, 201 if created else 200


@blp.route(CUSTOMER_PATH + "/transactions", methods=["POST"])
@documented_as(_post_transaction_by_schema)
def post_transaction(customer_id: int) -> Any:
    """Credit or debit points. Debits take the points that expire first."""
    body = transaction_body(json_body())
    if body is None:  # the schema reads it, and says what is wrong
        return _post_transaction_by_schema(customer_id=customer_id)
    entry, created = _post_transaction(body, customer_id)
    return jsonify(transaction_out(entry, created)), 201 if created else 200


def _post_transaction(body: dict[str, Any], customer_id: int) -> tuple[Entry, bool]:
    with services().db.transaction() as session:
        return services().loyalty.post_transaction(
            session,
            customer_id,
            body["points"],
            body["reason"],
            reference=body.get("reference"),
            expires_on=body.get("expires_at"),
        )


@blp.route(CUSTOMER_PATH + "/pin", methods=["PUT"])
@blp.arguments(PinIn)
@blp.response(200, PinOut)
@blp.alt_response(404, description="No such customer.")
def put_pin(body: dict[str, Any], customer_id: int) -> dict[str, Any]:
    """Set the customer's PIN, or generate a new one when none is given."""
    loyalty = services().loyalty
    with services().db.transaction() as session:
        customer = loyalty.get(session, customer_id)
        return {"pin": loyalty.set_pin(session, customer, body.get("pin"))}


@blp.route(CUSTOMER_PATH + "/ledger", methods=["GET"])
@blp.arguments(PageQuery, location="query")
@blp.response(200, LedgerPage)
@blp.alt_response(404, description="No such customer.")
def get_ledger(query: dict[str, Any], customer_id: int) -> dict[str, Any]:
    """The customer's ledger entries, oldest first, in keyset pages."""
    with services().db.read() as session:
        services().loyalty.get(session, customer_id)
        entries = list(
            session.scalars(
                select(LedgerEntry)
                .where(LedgerEntry.customer_id == customer_id, LedgerEntry.id > query["after"])
                .order_by(LedgerEntry.id)
                .limit(query["limit"])
            )
        )
        items = [{c.key: getattr(e, c.key) for c in LedgerEntry.__table__.columns} for e in entries]
    full = len(entries) == query["limit"]
    return {"items": items, "next_after": entries[-1].id if full else None}
