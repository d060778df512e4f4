"""What the worker reads for every call, as statements built once with bound parameters.

``CLAIM``: which due rows to send next; ``COVERED_CONTACTS``: the pending contact rows of the
chosen customers, each with its customer's current fields (the snapshot that covers them).
Building these statements for every call (the join's condition looked up from the foreign
keys, the correlated subqueries) cost as much as running them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, and_, bindparam, exists, or_, select

from pointbridge.delivery.snapshots import SNAPSHOT_COLUMNS
from pointbridge.storage.models import (
    Customer,
    OutboxKind,
    OutboxMessage,
    OutboxStatus,
    outbox_status_is,
)
from pointbridge.storage.sql import among

# The outbox's Core columns, for the statements run for every call: the same selects through
# the ORM cost a third more, in loading rows.
outbox = OutboxMessage.__table__.c


def _claim(past_busy: bool) -> Select[Any]:
    """Due rows (id, customer_id, kind) of ``integration_id``, oldest due first, ``limit`` of
    them; with ``past_busy``, none of the customers in ``busy``. An event waits until earlier
    rows of its customer are gone, a contact while an earlier push of the customer is
    backing off."""
    earlier = OutboxMessage.__table__.alias("earlier").c
    blocked = exists().where(
        earlier.integration_id == outbox.integration_id,
        earlier.customer_id == outbox.customer_id,
        outbox_status_is(OutboxStatus.PENDING, earlier),
        earlier.id < outbox.id,
    )
    # A push that timed out may still be applied by the platform later; a newer change sent
    # before that would be overwritten by the stale one. So a customer whose push is backing
    # off gets nothing until its retry, which sends the latest. (The rows of a customer fail
    # together, so looking at earlier rows suffices.)
    backing_off = blocked.where(
        earlier.kind == OutboxKind.CONTACT, earlier.next_attempt_at > bindparam("now")
    )
    # Three narrow columns: each further one (the JSON payload, a timestamp SQLite keeps as
    # text) cost more to convert than the query took; an events call reads its own.
    statement = select(outbox.id, outbox.customer_id, outbox.kind).where(
        outbox_status_is(OutboxStatus.PENDING, outbox),
        outbox.next_attempt_at <= bindparam("now"),
        outbox.integration_id == bindparam("integration_id"),
    )
    if past_busy:
        # Before the subqueries: the running calls' rows are the first the index yields.
        statement = statement.where(~among(outbox.customer_id, "busy"))
    # The order of ix_outbox_due, so the database walks that index and stops at ``limit``
    # instead of sorting every pending row each round. Ordering between a customer's rows
    # is kept by the conditions above.
    return (
        statement.where(or_(and_(outbox.kind == OutboxKind.CONTACT, ~backing_off), ~blocked))
        .order_by(outbox.next_attempt_at, outbox.id)
        .limit(bindparam("limit"))
    )


CLAIM = _claim(past_busy=False)
CLAIM_PAST_BUSY = _claim(past_busy=True)
# The pending contact rows of ``customer_ids``, each with its customer's current fields.
COVERED_CONTACTS = (
    select(outbox.id, outbox.created_at, *SNAPSHOT_COLUMNS)
    .join_from(OutboxMessage.__table__, Customer.__table__)
    .where(
        outbox.integration_id == bindparam("integration_id"),
        among(outbox.customer_id, "customer_ids"),
        # The same ids on the customer's side too: without it PostgreSQL hashed the join
        # over a scan of every customer, for each call.
        among(Customer.__table__.c.id, "customer_ids"),
        outbox.kind == OutboxKind.CONTACT,
        outbox_status_is(OutboxStatus.PENDING, outbox),
    )
)
