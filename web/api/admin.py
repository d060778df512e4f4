"""What the management blueprints share: the token check and their errors as JSON."""

from __future__ import annotations

from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from pointbridge.contract.errors import ChoiceRequired, ConfigurationError, DeliveryError
from pointbridge.delivery.exports import ExportError
from pointbridge.integrations import IntegrationNotFound
from pointbridge.plugins import UnknownPlatform
from pointbridge.web.api.auth import require_token
from pointbridge.web.api.body import check_json_body
from pointbridge.web.errors import error_response


class ChoiceOption(Schema):
    value = fields.String()
    label = fields.String()


class ChoiceRequiredOut(Schema):
    code = fields.String()
    message = fields.String()
    errors = fields.Dict()
    setting = fields.String(metadata={"description": "The setting to pick a value for."})
    options = fields.List(fields.Nested(ChoiceOption))


def management_blueprint(name: str, description: str) -> Blueprint:
    """A blueprint behind the bearer token whose refusals are JSON with what to fix."""
    blp = Blueprint(name, __name__, description=description)

    @blp.before_request
    def _require_token() -> None:
        require_token()
        check_json_body()

    @blp.errorhandler(IntegrationNotFound)
    @blp.errorhandler(UnknownPlatform)
    def _not_found(error: Exception) -> tuple[Response, int]:
        return error_response(404, str(error))

    @blp.errorhandler(ChoiceRequired)
    def _choice(error: ChoiceRequired) -> tuple[Response, int]:
        options = [{"value": value, "label": label} for value, label in error.options]
        return error_response(
            409, str(error), {error.setting: [str(error)]}, setting=error.setting, options=options
        )

    @blp.errorhandler(ConfigurationError)
    def _refused(error: ConfigurationError) -> tuple[Response, int]:
        # The platform refused the credentials or the account's set-up: the admin's to fix.
        return error_response(422, str(error))

    @blp.errorhandler(DeliveryError)
    def _platform_down(error: DeliveryError) -> tuple[Response, int]:
        return error_response(502, f"The platform did not answer as expected: {error}")

    @blp.errorhandler(ExportError)
    def _export(error: ExportError) -> tuple[Response, int]:
        return error_response(409, str(error))

    return blp
