"""JSON error bodies ``{"code", "message", "errors"}`` for the API and webhooks."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from flask import Flask, Response, jsonify
from sqlalchemy.exc import OperationalError

from pointbridge.contract.errors import PointbridgeError
from pointbridge.integrations import IntegrationError
from pointbridge.loyalty.rules import LoyaltyError
from pointbridge.storage.secrets import SecretsUnreadable


def error_response(
    status: int, message: str, errors: Any = None, **extra: Any
) -> tuple[Response, int]:
    code = HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    body = {"code": code, "message": message, "errors": errors or {}, **extra}
    return jsonify(body), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(LoyaltyError)
    def _loyalty(error: LoyaltyError) -> tuple[Response, int]:
        return error_response(error.status, error.message, error.details)

    @app.errorhandler(IntegrationError)
    def _integration(error: IntegrationError) -> tuple[Response, int]:
        return error_response(422, str(error))

    @app.errorhandler(SecretsUnreadable)
    def _secrets(error: SecretsUnreadable) -> tuple[Response, int]:
        return error_response(500, str(error))

    @app.errorhandler(OperationalError)
    def _database_busy(error: OperationalError) -> tuple[Response, int]:
        # SQLite's writers queue on busy_timeout; one still waiting when it ran out (several
        # server processes under a long write) is told to come back, which is no server bug.
        if "database is locked" not in str(error.orig):
            raise error
        response, status = error_response(503, "The database is busy: retry shortly.")
        response.headers["Retry-After"] = "1"
        return response, status

    @app.errorhandler(PointbridgeError)
    def _other(error: PointbridgeError) -> tuple[Response, int]:
        return error_response(500, str(error))
