"""The REST API for the shop's systems: flask-smorest, OpenAPI at /api/openapi.json."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask
from flask_smorest import Api
from swagger_ui_bundle import swagger_ui_path
from werkzeug.exceptions import HTTPException

from pointbridge.web.api.bulk import blp as bulk
from pointbridge.web.api.customers import blp as customers
from pointbridge.web.api.exports import blp as exports
from pointbridge.web.api.integrations import blp as integrations
from pointbridge.web.api.outbox import blp as outbox
from pointbridge.web.api.registry import blp as platforms
from pointbridge.web.api.tokens import blp as tokens
from pointbridge.web.errors import error_response

SWAGGER_UI_ASSETS = "/api/docs/assets"


class PointbridgeApi(Api):
    """flask-smorest with the project's error body: ``{"code", "message", "errors"}``."""

    def handle_http_exception(self, error: HTTPException) -> Any:
        data = getattr(error, "data", None) or {}
        errors = data.get("messages", {})
        if isinstance(errors, dict) and set(errors) <= {"json", "query", "headers", "path"}:
            # flask-smorest nests by location; callers care about the field names.
            errors = {
                key: value
                for location, found in errors.items()
                for key, value in (
                    found.items() if isinstance(found, dict) else [(location, found)]
                )
            }
        message = data.get("message") or error.description or "Error"
        if errors and error.code == 422:
            message = "The request has invalid fields: " + ", ".join(sorted(errors))
        response, status = error_response(error.code or 500, message, errors)
        if error.code == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="pointbridge"'
        return response, status


def init_api(app: Flask) -> None:
    app.config.setdefault("API_TITLE", "pointbridge")
    app.config.setdefault("API_VERSION", "1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault("OPENAPI_SWAGGER_UI_PATH", "/docs")
    # Swagger UI's files come from the installed swagger-ui-bundle: /api/docs works offline.
    app.config.setdefault("OPENAPI_SWAGGER_UI_URL", SWAGGER_UI_ASSETS + "/")
    # Else Swagger UI sends the whole document to validator.swagger.io for a badge.
    app.config.setdefault("OPENAPI_SWAGGER_UI_CONFIG", {"validatorUrl": None})
    app.register_blueprint(
        Blueprint(
            "swagger_ui_assets",
            __name__,
            static_folder=swagger_ui_path,
            static_url_path=SWAGGER_UI_ASSETS,
        )
    )
    api = PointbridgeApi(
        app,
        spec_kwargs={
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}],
        },
    )
    for blueprint in (customers, bulk, integrations, exports, platforms, outbox, tokens):
        api.register_blueprint(blueprint, url_prefix="/api")
