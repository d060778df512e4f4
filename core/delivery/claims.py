"""What the worker reads for every call, as statements built once with bound parameters.

``CLAIMS``: which due rows of a kind to send next; ``COVERED_CONTACTS``: the pending contact
rows of the chosen customers, each with its customer's current fields (the snapshot that
covers them).
Building these statements for every call (the join's condition looked up from the foreign
keys, the correlated subqueries) cost as much as running them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, bindparam, exists, select

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


def _claim(kind: OutboxKind, past_busy: bool) -> Select[Any]:
    """Due rows (id, customer_id) of ``kind`` for ``integration_id``, oldest due first,
    ``limit`` of them; with ``past_busy``, none of the customers in ``busy``.

    Contacts and events are claimed apart, contacts first: a claim of the oldest due rows of
    both kinds, on a first night's thousands of due expiry notices, held no contact update
    however long the notices took to send. An event still waits until earlier rows of its
    customer are gone (its contact fields go first), a contact while an earlier push of the
    customer is backing off.
    """
    earlier = OutboxMessage.__table__.alias("earlier").c
    blocked = exists().where(
        earlier.integration_id == outbox.integration_id,
        earlier.customer_id == outbox.customer_id,
        outbox_status_is(OutboxStatus.PENDING, earlier),
        earlier.id < outbox.id,
    )
    if kind == OutboxKind.CONTACT:
        # A push that timed out may still be applied by the platform later; a newer change
        # sent before that would be overwritten by the stale one. So a customer whose push
        # is backing off gets nothing until its retry, which sends the latest. (The rows of a
        # customer fail together, so looking at earlier rows suffices.)
        blocked = blocked.where(
            earlier.kind == OutboxKind.CONTACT, earlier.next_attempt_at > bindparam("now")
        )
    # Two narrow columns: each further one (the JSON payload, a timestamp SQLite keeps as
    # text) cost more to convert than the query took; a call reads its own.
    statement = select(outbox.id, outbox.customer_id).where(
        outbox_status_is(OutboxStatus.PENDING, outbox),
        outbox.kind == kind,
        outbox.next_attempt_at <= bindparam("now"),
        outbox.integration_id == bindparam("integration_id"),
    )
    if past_busy:
        # Before the subqueries: the running calls' rows are the first the index yields.
        statement = statement.where(~among(outbox.customer_id, "busy"))
    # The order of the due indexes (ix_outbox_due_contact for contacts), so the database
    # walks one and stops at ``limit`` instead of sorting every pending row each round.
    return (
        statement.where(~blocked)
        .order_by(outbox.next_attempt_at, outbox.id)
        .limit(bindparam("limit"))
    )


# By kind, then by whether calls are running: CLAIMS[kind][past_busy].
CLAIMS = {
    kind: {past_busy: _claim(kind, past_busy) for past_busy in (False, True)}
    for kind in (OutboxKind.CONTACT, OutboxKind.EVENT)
}
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
