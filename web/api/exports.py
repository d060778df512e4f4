"""Exports over REST: start (or resume) an integration's export of every customer, follow it,
cancel it. The delivery worker sends its pages."""

from __future__ import annotations

from typing import Any

from flask import abort
from flask.views import MethodView
from marshmallow import Schema, fields

from pointbridge.delivery.exports import (
    Progress,
    cancel_export,
    latest_export,
    progress_of,
    queue_export,
)
from pointbridge.web.api.admin import management_blueprint
from pointbridge.web.services import services

blp = management_blueprint("exports", "Exports of every customer to an integration.")


class ExportIn(Schema):
    restart = fields.Boolean(
        load_default=False,
        metadata={"description": "Cancel the unfinished export and start from the first customer."},
    )


class ProgressOut(Schema):
    job_id = fields.Integer()
    status = fields.String(metadata={"description": "queued, running, finished, failed, cancelled"})
    done = fields.Integer()
    total = fields.Integer()
    failed = fields.Integer(metadata={"description": "Customers the platform refused for good."})
    deferred = fields.Integer(metadata={"description": "Left to the outbox to retry."})
    rate = fields.Float(metadata={"description": "Customers per second since it started."})
    eta_seconds = fields.Float(allow_none=True)
    last_error = fields.String(allow_none=True)


class Cancelled(Schema):
    cancelled = fields.Integer(metadata={"description": "Unfinished exports cancelled."})


def progress_out(progress: Progress) -> dict[str, Any]:
    """An export's progress as the API answers it (the console's page reads it too)."""
    return {
        "job_id": progress.job_id,
        "status": progress.status,
        "done": progress.done,
        "total": progress.total,
        "failed": progress.failed,
        "deferred": progress.deferred,
        "rate": progress.rate,
        "eta_seconds": progress.eta_seconds,
        "last_error": progress.last_error,
    }


def _integration_id(name: str) -> int:
    svc = services()
    with svc.db.read() as session:
        return svc.integrations.get(session, name).id


@blp.route("/integrations/<name>/export")
class Export(MethodView):
    @blp.arguments(ExportIn)
    @blp.response(202, ProgressOut)
    @blp.alt_response(404, description="No such integration.")
    def post(self, body: dict[str, Any], name: str) -> dict[str, Any]:
        """Queue an export of every customer (or resume the unfinished one)."""
        svc = services()
        job = queue_export(svc.db, _integration_id(name), restart=body["restart"])
        svc.outbox.wake()
        return progress_out(progress_of(job))

    @blp.response(200, ProgressOut)
    @blp.alt_response(404, description="No such integration, or it has no export yet.")
    def get(self, name: str) -> dict[str, Any]:
        """The latest export's progress."""
        job = latest_export(services().db, _integration_id(name))
        if job is None:
            abort(404, description=f"{name} has no export yet.")
        return progress_out(progress_of(job))

    @blp.response(200, Cancelled)
    @blp.alt_response(404, description="No such integration.")
    def delete(self, name: str) -> dict[str, Any]:
        """Cancel the unfinished export."""
        return {"cancelled": cancel_export(services().db, _integration_id(name))}
