"""``/webhooks/<integration id>/<token>``: platforms' requests into pointbridge."""

from __future__ import annotations

import logging
import re

from flask import Blueprint, Response, jsonify, request
from sqlalchemy.exc import IntegrityError

from pointbridge.contract.errors import WebhookRejected
from pointbridge.contract.platform import Capability, WebhookRequest
from pointbridge.integrations import StoredSettingsRefused
from pointbridge.loyalty.webhook_actions import UNKNOWN_URL, apply_actions
from pointbridge.storage.models import IntegrationRow, IntegrationStatus
from pointbridge.storage.secrets import redact
from pointbridge.web.errors import error_response
from pointbridge.web.services import services

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)

# Both parts are plain strings: anything that is not one of our URLs (an id that overflows a
# BIGINT, a token no token_urlsafe could make) gets the same 401 as a wrong token, not a 404.
ROUTE = "/webhooks/<integration_id>/<token>"
_TOKEN_IN_PATH = re.compile(r"^(/webhooks/[^/]*/)([^/]+)")


def redact_webhook_token(path: str) -> str:
    """The path with a webhook URL's token redacted, for logs: the token is a credential."""
    return _TOKEN_IN_PATH.sub(lambda match: match.group(1) + redact(match.group(2)), path)


@bp.route(ROUTE, methods=["HEAD", "GET"])
def probe(integration_id: str, token: str) -> tuple[str, int]:
    # Some platforms check that a URL answers before they save it.
    return "", 200


@bp.post(ROUTE)
def receive(integration_id: str, token: str) -> tuple[Response, int]:
    svc = services()
    with svc.db.read(snapshot=False) as session:  # one statement
        target = svc.webhook_targets.find(session, integration_id, token)
        # The same answer for an unknown integration and a wrong token: nothing to probe.
        if target is None:
            return error_response(401, UNKNOWN_URL)
        row = target.row
        if row.status == IntegrationStatus.DISABLED:
            return error_response(403, f"Integration {row.name!r} is disabled.")
        platform = svc.host.platform(row.platform)
        if not platform.supports(Capability.WEBHOOKS):
            return error_response(404, f"{platform.title} integrations take no webhooks.")
        try:
            integration = target.view()
        except StoredSettingsRefused as exc:
            # The worker holds the integration for an admin; the platform is asked to send
            # this again later, when the admin may have fixed them.
            return error_response(503, f"Integration {row.name!r} waits for an admin: {exc}")
    incoming = WebhookRequest(
        method=request.method,
        headers=dict(request.headers),
        query=request.args.to_dict(),
        body=request.get_data(cache=False),
    )
    try:
        actions = svc.host.call(
            "handle_webhook", integration.platform, integration=integration, request=incoming
        )
    except WebhookRejected as exc:
        extra = {"hint": exc.hint} if exc.hint else {}
        return error_response(exc.status, exc.message, **extra)
    written = {str(list_id) for list_id in platform.written_lists(integration)}
    try:
        with svc.db.transaction() as session:
            results = apply_actions(session, svc.loyalty, row, actions or [], written)
    except IntegrityError:
        # Removed by an admin since it was found: its rows' foreign keys refuse the write,
        # which rolled back whole. Checked here, not locked beforehand on every request.
        with svc.db.read() as session:
            if session.get(IntegrationRow, row.id) is not None:
                raise
        return error_response(401, UNKNOWN_URL)
    log.info("webhook for %s: %s", row.name, "; ".join(results) or "no actions")
    return jsonify({"message": "; ".join(results) or "No actions.", "results": results}), 200
