"""Applying normalized webhook actions: list subscriptions credit and debit points."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from pointbridge.loyalty import Loyalty, LoyaltyError
from pointbridge.models import IntegrationRow, ListMembership
from pointbridge.platform import ListSubscription, WebhookAction

SUBSCRIPTION_REASON = "subscription"


class UnknownList(LoyaltyError):
    status = 422


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
    rewards = integration.list_rewards or {}
    if action.list_id not in rewards:
        configured = ", ".join(sorted(rewards)) or "none"
        raise UnknownList(
            f"List {action.list_id} has no points set in integration {integration.name!r} "
            f"(lists with points: {configured}). Set them with: pointbridge integrations set "
            f"{integration.name} list_rewards={action.list_id}:POINTS",
            list_id=action.list_id,
        )
    customer = loyalty.find(session, action.email)
    # Lock the customer first so two deliveries of the same webhook serialize here.
    customer = loyalty.get(session, customer.id, for_update=True)
    membership = session.scalar(
        select(ListMembership).where(
            ListMembership.integration_id == integration.id,
            ListMembership.customer_id == customer.id,
            ListMembership.list_id == action.list_id,
        )
    )
    was_subscribed = membership is not None and membership.subscribed
    if membership is None:
        membership = ListMembership(
            integration_id=integration.id,
            customer_id=customer.id,
            list_id=action.list_id,
            subscribed=False,
            credited_points=0,
        )
        session.add(membership)
    if action.subscribed == was_subscribed:
        session.flush()
        state = "subscribed to" if was_subscribed else "not subscribed to"
        return f"{customer.email} is already {state} list {action.list_id}: nothing changed"
    membership.subscribed = action.subscribed
    # ``credited_points`` is what the list has given and not yet taken back. A customer who
    # spent the reward before leaving still holds it, so coming back earns only the rest:
    # subscribe, spend, unsubscribe, subscribe again is not a way to mint points.
    if action.subscribed:
        points = max(int(rewards[action.list_id]) - membership.credited_points, 0)
        membership.credited_points += points
        session.flush()
        if points == 0:
            return (
                f"{customer.email} subscribed to list {action.list_id} again: +0 points "
                "(the reward from an earlier subscription was spent, not taken back)"
            )
        loyalty.post_transaction(session, customer, points, SUBSCRIPTION_REASON)
        return f"{customer.email} subscribed to list {action.list_id}: +{points} points"
    # Take back what the subscription earned, but never more than is left to take.
    points = min(membership.credited_points, customer.balance)
    membership.credited_points -= points
    session.flush()
    if points > 0:
        loyalty.post_transaction(session, customer, -points, SUBSCRIPTION_REASON)
    return f"{customer.email} unsubscribed from list {action.list_id}: -{points} points"
