"""The outbox over REST: what waits per integration, dead letters, retry."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from marshmallow import Schema, fields, validate

from pointbridge.delivery import admin as outbox_admin
from pointbridge.loyalty.schema import WholeNumber, text
from pointbridge.storage.sql import MAX_ID
from pointbridge.web.api.admin import management_blueprint
from pointbridge.web.services import services

blp = management_blueprint("outbox", "The delivery queue: counts, dead letters, retry.")


class OutboxLineOut(Schema):
    integration = fields.String()
    status = fields.String()
    pending = fields.Integer()
    retrying = fields.Integer()
    dead = fields.Integer()
    oldest_pending_seconds = fields.Float(allow_none=True)


class DeadQuery(Schema):
    integration = text(100, metadata={"description": "Only this integration."})
    limit = WholeNumber(load_default=100, validate=validate.Range(min=1, max=1000))


class DeadLetterOut(Schema):
    id = fields.Integer()
    integration = fields.String()
    customer_email = fields.String()
    kind = fields.String()
    event_type = fields.String(allow_none=True)
    attempts = fields.Integer()
    last_error = fields.String(allow_none=True)
    created_at = fields.DateTime()


class RetryIn(Schema):
    integration = text(
        100, metadata={"description": "Only this one; also lifts its failing state."}
    )
    ids = fields.List(
        fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_ID)),
        validate=validate.Length(max=10_000),
        load_default=list,
        metadata={"description": "Only these dead letters."},
    )


class RetryOut(Schema):
    revived = fields.Integer(metadata={"description": "Dead letters queued again."})
    reactivated = fields.List(fields.String(), metadata={"description": "Active again."})


def _integration(name: str | None) -> str | None:
    """The name of the integration a filter names (by name or id); 404 naming an unknown one,
    where a filter on it would find nothing."""
    if name is None:
        return None
    svc = services()
    with svc.db.read() as session:
        return svc.integrations.get(session, name).name


@blp.route("/outbox", methods=["GET"])
@blp.response(200, OutboxLineOut(many=True))
def status() -> list[dict[str, Any]]:
    """Pending, retrying and dead rows per integration, and the oldest waiting."""
    return [asdict(line) for line in outbox_admin.outbox_status(services().db)]


@blp.route("/outbox/dead", methods=["GET"])
@blp.arguments(DeadQuery, location="query")
@blp.response(200, DeadLetterOut(many=True))
@blp.alt_response(404, description="No such integration.")
def dead(query: dict[str, Any]) -> list[dict[str, Any]]:
    """Dead letters with their last error, oldest first."""
    name = _integration(query.get("integration"))
    letters = outbox_admin.dead_letters(services().db, name, query["limit"])
    return [asdict(letter) for letter in letters]


@blp.route("/outbox/retry", methods=["POST"])
@blp.arguments(RetryIn)
@blp.response(200, RetryOut)
@blp.alt_response(404, description="No such integration.")
def retry(body: dict[str, Any]) -> dict[str, Any]:
    """Send dead letters again (all, one integration's, or by id)."""
    name = _integration(body.get("integration"))
    result = outbox_admin.retry(services().db, name, body["ids"])
    services().outbox.wake()
    return asdict(result)
