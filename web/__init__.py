"""The Flask host: app factory wiring the REST API, webhooks and metrics."""

from __future__ import annotations

from types import TracebackType

from flask import Flask, request

from pointbridge.services import Services
from pointbridge.settings import Settings
from pointbridge.web.admin import init_admin
from pointbridge.web.api import init_api
from pointbridge.web.errors import register_error_handlers
from pointbridge.web.metrics import bp as metrics_bp
from pointbridge.web.referrals import bp as referrals_bp
from pointbridge.web.webhooks import bp as webhooks_bp
from pointbridge.web.webhooks import redact_webhook_token

MAX_BODY_BYTES = 1024 * 1024


class PointbridgeFlask(Flask):
    def log_exception(
        self,
        exc_info: tuple[type, BaseException, TracebackType] | tuple[None, None, None],
    ) -> None:
        # Flask's own line holds request.path, and a webhook URL's path holds its token.
        path = redact_webhook_token(request.path)
        self.logger.error("Exception on %s [%s]", path, request.method, exc_info=exc_info)


def create_app(settings: Settings | None = None, services: Services | None = None) -> Flask:
    app = PointbridgeFlask(__name__, instance_relative_config=False)
    if services is None:
        services = Services.build(settings or Settings.from_env())
    app.extensions["pointbridge"] = services
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.config["JSON_SORT_KEYS"] = False
    register_error_handlers(app)
    init_api(app)
    app.register_blueprint(webhooks_bp)
    app.register_blueprint(metrics_bp)
    app.register_blueprint(referrals_bp)
    init_admin(app)
    return app
