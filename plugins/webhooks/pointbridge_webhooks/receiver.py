"""A system that subscribes to pointbridge's webhooks, served on a real loopback port, verifying
each message with the spec's own reference library (``standardwebhooks``), never with the
plugin's signing code. Importing it needs the ``testing`` extra.

Serve it with ``pointbridge.testing.FakeServer(create_app(receiver))`` and point the
integration's ``url`` at ``server.url + "/hook"``.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, request
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

# Secrets as a receiver is given them: whsec_ + base64 of 24 random bytes (fixed for tests).
SECRET = "whsec_" + base64.b64encode(bytes(range(24))).decode()
NEXT_SECRET = "whsec_" + base64.b64encode(bytes(range(100, 124))).decode()


@dataclass
class Receiver:
    """What the receiving system got: every verified message, in order."""

    secret: str = SECRET
    messages: list[dict[str, Any]] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]

    def got_contact(self, email: str) -> bool:
        return any(m["data"].get("email") == email for m in self.of_type("contact.updated"))


def create_app(receiver: Receiver) -> Flask:
    app = Flask("receiver")

    @app.post("/hook")
    def hook() -> Response:
        body = request.get_data()
        try:
            message = Webhook(receiver.secret).verify(body, dict(request.headers))
        except WebhookVerificationError as exc:
            return Response(json.dumps({"error": str(exc)}), 401, mimetype="application/json")
        receiver.ids.append(request.headers["webhook-id"])
        receiver.messages.append(message)
        return Response("", 204)

    return app
