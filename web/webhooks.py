"""``/webhooks/<integration id>/<token>``: platforms' requests into pointbridge."""

from __future__ import annotations

import hmac
import logging

from flask import Blueprint, Response, jsonify, request

from core.errors import WebhookRejected
from core.models import IntegrationRow, IntegrationStatus
from core.platform import Capability, WebhookRequest
from core.webhooks import apply_actions
from web.errors import error_response
from web.services import services

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)


@bp.route("/webhooks/<int:integration_id>/<token>", methods=["HEAD", "GET"])
def probe(integration_id: int, token: str) -> tuple[str, int]:
    # Some platforms check that a URL answers before they save it.
    return "", 200


@bp.post("/webhooks/<int:integration_id>/<token>")
def receive(integration_id: int, token: str) -> tuple[Response, int]:
    svc = services()
    with svc.db.transaction() as session:
        row = session.get(IntegrationRow, integration_id)
        # The same answer for an unknown integration and a wrong token: nothing to probe.
        if row is None or not hmac.compare_digest(row.webhook_token, token):
            return error_response(401, "Unknown webhook URL: copy it again from the integration.")
        if row.status == IntegrationStatus.DISABLED:
            return error_response(403, f"Integration {row.name!r} is disabled.")
        platform = svc.host.platform(row.platform)
        if not platform.supports(Capability.WEBHOOKS):
            return error_response(404, f"{platform.title} integrations take no webhooks.")
        integration = svc.integrations.view(row)
    incoming = WebhookRequest(
        method=request.method,
        headers=dict(request.headers),
        query=request.args.to_dict(),
        body=request.get_data(cache=False),
    )
    try:
        actions = svc.host.call(
            "handle_webhook", row.platform, integration=integration, request=incoming
        )
    except WebhookRejected as exc:
        extra = {"hint": exc.hint} if exc.hint else {}
        return error_response(exc.status, exc.message, **extra)
    with svc.db.transaction() as session:
        row = session.get(IntegrationRow, integration_id)
        results = apply_actions(session, svc.loyalty, row, actions or [])
    log.info("webhook for %s: %s", row.name, "; ".join(results) or "no actions")
    return jsonify({"message": "; ".join(results) or "No actions.", "results": results}), 200
