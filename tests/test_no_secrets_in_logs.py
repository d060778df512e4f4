"""API keys, passwords and webhook tokens never reach the logs, even when every call fails."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from urllib.parse import urlsplit

from flask import Flask, request
from marshmallow import Schema, fields

from pointbridge import (
    Capability,
    Contact,
    Integration,
    ItemFailure,
    ListSubscription,
    WebhookRequest,
    hookimpl,
)
from pointbridge.kit.http import ApiClient
from pointbridge.services import Services
from pointbridge.storage.secrets import redact
from pointbridge.testing import FakeServer
from pointbridge.testing.inprocess import InProcessPlatform
from pointbridge.web.cli import cli

API_KEY = "sk-live-very-secret-0123456789"
PASSWORD = "correct horse battery staple"


class Settings(Schema):
    api_url = fields.String(required=True)
    login = fields.String(required=True)
    password = fields.String(required=True, metadata={"secret": True})
    api_key = fields.String(required=True, metadata={"secret": True})


class Guarded(InProcessPlatform):
    name = "guarded"
    settings_schema = Settings

    def _client(self, integration: Integration) -> ApiClient:
        settings = integration.settings
        return ApiClient(
            settings["api_url"],
            auth=(settings["login"], settings["password"]),
            headers={"X-Api-Key": settings["api_key"]},
            auth_message="Check the login, password and API key.",
        )

    @hookimpl
    def push_contact(
        self, integration: Integration, contacts: Sequence[Contact]
    ) -> list[ItemFailure]:
        self._client(integration).post("contacts", json=[c.email for c in contacts])
        return []


def refusing_platform() -> Flask:
    app = Flask("refusing")

    @app.post("/contacts")
    def contacts() -> tuple[dict[str, str], int]:
        # A platform that quotes the request back would leak; ours only names the problem.
        assert request.headers["X-Api-Key"] == API_KEY
        return {"message": "Authorization has been denied for this request."}, 401

    return app


def test_failing_deliveries_log_no_secret(services: Services, caplog, app) -> None:
    caplog.set_level(logging.DEBUG)
    services.host.register(Guarded(), "guarded")
    with FakeServer(refusing_platform()) as platform:
        with services.db.transaction() as session:
            services.integrations.add(
                session,
                "guarded",
                "guarded",
                {
                    "api_url": platform.url,
                    "login": "shop",
                    "password": PASSWORD,
                    "api_key": API_KEY,
                },
            )
        services.integrations.install(services.db, "guarded")
        with services.db.transaction() as session:
            services.loyalty.create_customer(session, {"email": "jana@example.com"})
        services.worker().drain()

    with services.db.transaction() as session:
        row = services.integrations.get(session, "guarded")
        assert row.status == "failing" and "Check the login" in row.last_error
    shown = app.test_cli_runner().invoke(cli, ["integrations", "show", "guarded"])
    assert shown.exit_code == 0
    assert "needs an admin" in caplog.text  # the failure was logged...
    for secret in (API_KEY, PASSWORD):  # ...and neither the logs nor the admin's view hold a secret
        assert secret not in caplog.text
        assert secret not in shown.output
        assert secret not in row.last_error


class Crashing(InProcessPlatform):
    """A plugin whose webhook handler has a bug: the request ends in a 500."""

    name = "crashing"
    capabilities = frozenset({Capability.WEBHOOKS})

    @hookimpl
    def handle_webhook(
        self, integration: Integration, request: WebhookRequest
    ) -> list[ListSubscription]:
        raise RuntimeError("a bug in the plugin")


def test_a_failing_webhook_logs_its_path_without_the_token(services: Services, caplog, app) -> None:
    caplog.set_level(logging.DEBUG)
    services.host.register(Crashing(), "crashing")
    with services.db.transaction() as session:
        row = services.integrations.add(session, "c", "crashing", {})
        path = urlsplit(services.integrations.webhook_url(row)).path
    base, token = path.rsplit("/", 1)

    assert app.test_client().post(path, json={}).status_code == 500

    assert f"Exception on {base}/{redact(token)} [POST]" in caplog.text
    assert "a bug in the plugin" in caplog.text  # the failure itself is still there to debug
    assert token not in caplog.text
