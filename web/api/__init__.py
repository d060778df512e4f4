"""The REST API for the shop's systems: flask-smorest, OpenAPI at /api/openapi.json."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_smorest import Api
from werkzeug.exceptions import HTTPException

from pointbridge.web.api.bulk import blp as bulk
from pointbridge.web.api.customers import blp as customers
from pointbridge.web.errors import error_response


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
    app.config.setdefault("OPENAPI_SWAGGER_UI_URL", "https://cdn.jsdelivr.net/npm/swagger-ui-dist/")
    api = PointbridgeApi(
        app,
        spec_kwargs={
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}],
        },
    )
    api.register_blueprint(customers, url_prefix="/api")
    api.register_blueprint(bulk, url_prefix="/api")
