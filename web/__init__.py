"""The Flask host: app factory wiring the REST API, webhooks and metrics."""

from __future__ import annotations

from flask import Flask

from core.services import Services
from core.settings import Settings
from web.api import init_api
from web.errors import register_error_handlers
from web.metrics import bp as metrics_bp
from web.webhooks import bp as webhooks_bp

MAX_BODY_BYTES = 1024 * 1024


def create_app(settings: Settings | None = None, services: Services | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=False)
    if services is None:
        services = Services.build(settings or Settings.from_env())
    app.extensions["pointbridge"] = services
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.config["JSON_SORT_KEYS"] = False
    register_error_handlers(app)
    init_api(app)
    app.register_blueprint(webhooks_bp)
    app.register_blueprint(metrics_bp)
    return app
