"""Applying normalized webhook actions: list subscriptions credit and debit points."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from pointbridge.contract.platform import ListSubscription, WebhookAction
from pointbridge.loyalty.ledger_sql import CUSTOMERS
from pointbridge.loyalty.rules import CustomerNotFound, LoyaltyError, normalize_email
from pointbridge.loyalty.service import Loyalty
from pointbridge.storage.models import IntegrationRow, IntegrationStatus, ListMembership

SUBSCRIPTION_REASON = "subscription"
# The answer to a webhook URL that names no integration (or another than it did).
UNKNOWN_URL = "Unknown webhook URL: copy it again from the integration."
MEMBERSHIPS = ListMembership.__table__
INTEGRATIONS = IntegrationRow.__table__
# What the write must see as the webhook's lookup saw it: an admin may disable the
# integration, change its rewards, or remove it (and SQLite gives a new one the freed id)
# while the request is parsed.
_CURRENT = (INTEGRATIONS.c.status, INTEGRATIONS.c.list_rewards, INTEGRATIONS.c.webhook_token_hash)
_THE_INTEGRATION = INTEGRATIONS.c.id == bindparam("integration_id")
# Built once: on the request path, building a statement costs more CPU than running it.
# The integration's current state comes with the customer's lock, in the same statement.
_LOCK_CUSTOMER = (
    select(CUSTOMERS.c.id, CUSTOMERS.c.balance, *_CURRENT)
    .select_from(CUSTOMERS.outerjoin(INTEGRATIONS, _THE_INTEGRATION))
    .where(CUSTOMERS.c.email == bindparam("email"))
    .with_for_update(of=CUSTOMERS)
)
_INTEGRATION_NOW = select(*_CURRENT).where(_THE_INTEGRATION)
_MEMBERSHIP = select(
    MEMBERSHIPS.c.id, MEMBERSHIPS.c.subscribed, MEMBERSHIPS.c.credited_points
).where(
    MEMBERSHIPS.c.integration_id == bindparam("integration_id"),
    MEMBERSHIPS.c.customer_id == bindparam("customer_id"),
    MEMBERSHIPS.c.list_id == bindparam("list_id"),
)
_INSERT_MEMBERSHIP = insert(MEMBERSHIPS)
_UPDATE_MEMBERSHIP = (
    update(MEMBERSHIPS)
    .where(MEMBERSHIPS.c.id == bindparam("membership_id"))
    .values(subscribed=bindparam("new_subscribed"), credited_points=bindparam("new_credited"))
)


class UnknownList(LoyaltyError):
    status = 422


class UnknownWebhookUrl(LoyaltyError):
    status = 401


class IntegrationDisabled(LoyaltyError):
    status = 403


def apply_actions(
    session: Session,
    loyalty: Loyalty,
    integration: IntegrationRow,
    actions: Sequence[WebhookAction],
    written_lists: Collection[str],
) -> list[str]:
    """Apply every action or none (the caller's transaction); returns what happened.

    ``written_lists`` are the lists pointbridge adds contacts to itself (``Platform.
    written_lists``): a subscription to one of them may be pointbridge's own export coming
    back, so it never earns points.
    """
    return [
        apply_list_subscription(session, loyalty, integration, action, written_lists)
        for action in actions
    ]


def apply_list_subscription(
    session: Session,
    loyalty: Loyalty,
    integration: IntegrationRow,
    action: ListSubscription,
    written_lists: Collection[str],
) -> str:
    if action.subscribed and action.list_id in written_lists:
        return (
            f"Ignored: {action.email} subscribed to list {action.list_id}, which pointbridge "
            "writes to itself (it syncs contacts there), so the subscription may be its own; "
            "nothing credited. Reward a different list."
        )
    email = normalize_email(action.email)
    # Lock the customer first so two deliveries of the same webhook serialize here, and read
    # the balance under that lock.
    # On the session's connection: the ORM's execute has nothing to flush or load for these.
    connection = session.connection()
    key = {"email": email, "integration_id": integration.id}
    customer = connection.execute(_LOCK_CUSTOMER, key).first()
    current = customer or connection.execute(_INTEGRATION_NOW, key).first()
    if current is None or current.webhook_token_hash != integration.webhook_token_hash:
        raise UnknownWebhookUrl(UNKNOWN_URL)
    if current.status == IntegrationStatus.DISABLED:
        raise IntegrationDisabled(f"Integration {integration.name!r} is disabled.")
    rewards = current.list_rewards or {}
    if action.list_id not in rewards:
        configured = ", ".join(sorted(rewards)) or "none"
        raise UnknownList(
            f"List {action.list_id} has no points set in integration {integration.name!r} "
            f"(lists with points: {configured}). Set them with: pointbridge integrations set "
            f"{integration.name} list_rewards={action.list_id}:POINTS",
            list_id=action.list_id,
        )
    if customer is None:
        raise CustomerNotFound(f"No customer with e-mail {email}.", email=email)
    key = {"integration_id": integration.id, "customer_id": customer.id, "list_id": action.list_id}
    membership = connection.execute(_MEMBERSHIP, key).first()
    was_subscribed = membership is not None and membership.subscribed
    if action.subscribed == was_subscribed:
        if membership is None:
            _save_membership(session, integration.id, customer.id, action.list_id, None, False, 0)
        state = "subscribed to" if was_subscribed else "not subscribed to"
        return f"{email} is already {state} list {action.list_id}: nothing changed"
    credited = membership.credited_points if membership is not None else 0
    membership_id = membership.id if membership is not None else None
    # ``credited_points`` is what the list has given and not yet taken back. A customer who
    # spent the reward before leaving still holds it, so coming back earns only the rest:
    # subscribe, spend, unsubscribe, subscribe again is not a way to mint points.
    if action.subscribed:
        points = max(int(rewards[action.list_id]) - credited, 0)
    else:
        # Take back what the subscription earned, but never more than is left to take.
        points = -min(credited, customer.balance)
    _save_membership(
        session,
        integration.id,
        customer.id,
        action.list_id,
        membership_id,
        action.subscribed,
        credited + points,
    )
    if points:
        loyalty.post_transaction(session, customer.id, points, SUBSCRIPTION_REASON)
    if not action.subscribed:
        return f"{email} unsubscribed from list {action.list_id}: -{-points} points"
    if points == 0:
        return (
            f"{email} subscribed to list {action.list_id} again: +0 points "
            "(the reward from an earlier subscription was spent, not taken back)"
        )
    return f"{email} subscribed to list {action.list_id}: +{points} points"


def _save_membership(
    session: Session,
    integration_id: int,
    customer_id: int,
    list_id: str,
    membership_id: int | None,
    subscribed: bool,
    credited_points: int,
) -> None:
    """Insert the membership row (``membership_id`` None) or update it."""
    if membership_id is None:
        values = {
            "integration_id": integration_id,
            "customer_id": customer_id,
            "list_id": list_id,
            "subscribed": subscribed,
            "credited_points": credited_points,
        }
        session.connection().execute(_INSERT_MEMBERSHIP, values)
    else:
        session.connection().execute(
            _UPDATE_MEMBERSHIP,
            {
                "membership_id": membership_id,
                "new_subscribed": subscribed,
                "new_credited": credited_points,
            },
        )
