"""Integrations over REST: what ``pointbridge integrations`` does, for a shop system or page.

Bodies take the config file's shape: ``field_prefix``, ``expiry_notice_days``,
``list_rewards``, ``disabled_events`` and ``reward_thresholds`` beside ``settings`` (the
platform's own), as JSON or as the command line's strings ("14,3"). Secrets are never answered: the
platform's secret settings, the webhook URL's token and the webhook secret are redacted, except
once, in the answer of the call that makes a new webhook URL or secret.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import abort
from flask.views import MethodView
from marshmallow import Schema, ValidationError, fields, validate, validates

from pointbridge.delivery import admin as outbox_admin
from pointbridge.delivery.exports import activate
from pointbridge.host_options import (
    MAX_NAME,
    NAME_PATTERN,
    NAME_RULE,
    IntegrationError,
    parse_disabled_events,
    parse_integration_name,
    parse_notice_days,
    parse_reward_thresholds,
)
from pointbridge.integrations import HOST_SETTINGS
from pointbridge.loyalty.schema import Text, text
from pointbridge.storage.models import IntegrationRow
from pointbridge.web.api.admin import (
    ChoiceRequiredOut,
    management_blueprint,
)
from pointbridge.web.api.registry import HOST_SETTINGS_SCHEMA
from pointbridge.web.services import services

blp = management_blueprint(
    "integrations", "Integrations: add, configure, install, disable, remove (secrets redacted)."
)
PATH = "/integrations/<name>"
# Far above any platform's settings, far below what would strain the database's JSON column.
MAX_SETTING_TEXT = 10_000


def storable(value: Any) -> None:
    """JSON both databases keep: no NUL or lone surrogate anywhere, no huge text."""
    if isinstance(value, str):
        Text(validate=validate.Length(max=MAX_SETTING_TEXT)).deserialize(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            storable(key)
            storable(item)
    elif isinstance(value, list):
        for item in value:
            storable(item)


class HostSetting(fields.Field):
    """A host setting checked by the core's own parser, the config file's and the command
    line's: one rule, and its refusal is the 422's message. The value goes on as written (the
    core parses it again when it applies it)."""

    def __init__(self, parse: Callable[[Any], Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.parse = parse

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        try:
            self.parse(value)
        except IntegrationError as exc:
            raise ValidationError(str(exc)) from None
        return value


def _host_setting(parse: Callable[[Any], Any], name: str) -> HostSetting:
    # The description and JSON Schema are GET /api/platforms' host_settings_schema, so the
    # OpenAPI document and the form builder's schema say the same.
    return HostSetting(parse, allow_none=True, metadata=HOST_SETTINGS_SCHEMA[name])


class HostSettings(Schema):
    field_prefix = Text(
        validate=validate.Length(max=32),
        metadata={"description": "Prefix of every field pointbridge writes (default ellity_)."},
    )
    expiry_notice_days = _host_setting(parse_notice_days, "expiry_notice_days")
    disabled_events = _host_setting(parse_disabled_events, "disabled_events")
    reward_thresholds = _host_setting(parse_reward_thresholds, "reward_thresholds")
    list_rewards = fields.Dict(
        keys=Text(validate=validate.Length(min=1, max=100)),
        values=fields.Integer(strict=True),
        metadata={"description": "List id -> points for subscribing to it."},
    )
    settings = fields.Dict(
        keys=Text(validate=validate.Length(min=1, max=100)),
        values=fields.Raw(allow_none=True),
        metadata={"description": "The platform's settings (see GET /api/platforms)."},
    )

    @validates("settings")
    def _check_settings(self, value: dict[str, Any], **kwargs: Any) -> None:
        storable(value)


class IntegrationCreate(HostSettings):
    name = text(
        MAX_NAME,
        required=True,
        metadata={
            "description": f"Your name for it, used in URLs. {NAME_RULE}.",
            "pattern": NAME_PATTERN,
        },
    )
    platform = text(100, required=True, metadata={"description": "See GET /api/platforms."})

    @validates("name")
    def _check_name(self, value: str, **kwargs: Any) -> None:
        try:
            parse_integration_name(value)
        except IntegrationError as exc:
            raise ValidationError(str(exc)) from None


class Health(Schema):
    pending = fields.Integer(metadata={"description": "Rows waiting for their first attempt."})
    retrying = fields.Integer(metadata={"description": "Rows that failed and wait to retry."})
    dead = fields.Integer(metadata={"description": "Dead letters (see /api/outbox/dead)."})
    oldest_pending_seconds = fields.Float(allow_none=True)


class IntegrationSummary(Schema):
    id = fields.Integer()
    name = fields.String()
    platform = fields.String()
    status = fields.String(metadata={"description": "new, active, failing or disabled"})
    last_error = fields.String(allow_none=True)
    health = fields.Nested(Health)


class IntegrationOut(IntegrationSummary):
    field_prefix = fields.String()
    expiry_notice = fields.String()
    list_rewards = fields.Dict(keys=fields.String(), values=fields.Integer())
    disabled_events = fields.List(fields.String(), metadata={"description": "Not sent."})
    reward_thresholds = fields.List(
        fields.Integer(), metadata={"description": "Balances that send reward-available."}
    )
    settings = fields.Dict(metadata={"description": "Secret settings redacted."})
    webhook_url = fields.String(metadata={"description": "Its token redacted."})
    webhook_secret = fields.String(metadata={"description": "Redacted."})


class Updated(Schema):
    changed = fields.List(fields.String())
    install_needed = fields.Boolean(
        metadata={
            "description": "New credentials, target or prefix: POST .../install to check them "
            "(delivery resumes)."
        }
    )
    integration = fields.Nested(IntegrationOut)


class InstallIn(Schema):
    resync = fields.Boolean(
        load_default=False, metadata={"description": "Send every customer again."}
    )


class InitialSyncOut(Schema):
    reason = fields.String()
    export_id = fields.Integer(metadata={"description": "Follow it at .../export."})


class Installed(Schema):
    created = fields.List(fields.String(), metadata={"description": "Fields created."})
    existing = fields.List(fields.String(), metadata={"description": "Fields reused."})
    message = fields.String()
    initial_sync = fields.Nested(
        InitialSyncOut,
        allow_none=True,
        metadata={"description": "None: every customer went to this target before."},
    )
    integration = fields.Nested(IntegrationOut)


class RotateIn(Schema):
    secret = fields.Boolean(
        load_default=False, metadata={"description": "Also a new webhook secret."}
    )


class Rotated(Schema):
    webhook_url = fields.String(metadata={"description": "Shown once: put it in the platform."})
    webhook_secret = fields.String(metadata={"description": "Shown once, when asked for."})


class Removed(Schema):
    removed = fields.String()
    note = fields.String(allow_none=True)


# Platforms whose settings name a file on the server: over HTTP a token would let its holder
# write wherever the server may; they are set up from the command line, on the server itself.
SERVER_FILE_PLATFORMS = frozenset({"jsonl"})


def _refuse_server_files(platform: str) -> None:
    if platform in SERVER_FILE_PLATFORMS:
        abort(
            403,
            description=f"A {platform} integration writes a file on the server: add or change "
            f"it with `pointbridge integrations` on the server.",
        )


def _values(body: dict[str, Any]) -> dict[str, Any]:
    """What Integrations.add and .update take: platform and host settings in one."""
    host = {key: body[key] for key in HOST_SETTINGS if key in body}
    return {**body.get("settings", {}), **host}


def _health() -> dict[str, dict[str, Any]]:
    return {
        line.integration: {
            "pending": line.pending,
            "retrying": line.retrying,
            "dead": line.dead,
            "oldest_pending_seconds": line.oldest_pending_seconds,
        }
        for line in outbox_admin.outbox_status(services().db)
    }


def _described(row: IntegrationRow) -> dict[str, Any]:
    described = services().integrations.describe(row)
    return {**described, "health": _health().get(row.name)}


def _show(name: str) -> dict[str, Any]:
    svc = services()
    with svc.db.read() as session:
        return _described(svc.integrations.get(session, name))


@blp.route("/integrations")
class IntegrationList(MethodView):
    @blp.response(200, IntegrationSummary(many=True))
    def get(self) -> list[dict[str, Any]]:
        """Every integration with its state and delivery health."""
        with services().db.read() as session:
            rows = session.query(IntegrationRow).order_by(IntegrationRow.name).all()
            health = _health()
            return [
                {
                    "id": row.id,
                    "name": row.name,
                    "platform": row.platform,
                    "status": row.status,
                    "last_error": row.last_error,
                    "health": health.get(row.name),
                }
                for row in rows
            ]

    @blp.arguments(IntegrationCreate)
    @blp.response(201, IntegrationOut)
    @blp.alt_response(404, description="No installed plugin provides the platform.")
    @blp.alt_response(422, description="Invalid settings, or the name is taken.")
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Add an integration (saved, not installed: POST .../install checks it)."""
        _refuse_server_files(body["platform"])
        svc = services()
        values = _values(body)
        with svc.db.transaction() as session:
            row = svc.integrations.add(session, body["name"], body["platform"], values)
        return _show(row.name)


@blp.route(PATH)
class IntegrationByName(MethodView):
    @blp.response(200, IntegrationOut)
    @blp.alt_response(404, description="No such integration.")
    def get(self, name: str) -> dict[str, Any]:
        """Settings (secrets redacted), state, health, webhook URL (redacted)."""
        return _show(name)

    @blp.arguments(HostSettings)
    @blp.response(200, Updated)
    @blp.alt_response(404, description="No such integration.")
    @blp.alt_response(422, description="Invalid settings.")
    def patch(self, body: dict[str, Any], name: str) -> dict[str, Any]:
        """Change settings; the answer says whether an install must check them."""
        svc = services()
        with svc.db.transaction() as session:
            row = svc.integrations.get(session, name)
            _refuse_server_files(row.platform)
            changed = svc.integrations.update(row, _values(body))
            name = row.name
        return {
            "changed": changed,
            "install_needed": bool(changed) and svc.integrations.needs_install(changed),
            "integration": _show(name),
        }

    @blp.response(200, Removed)
    @blp.alt_response(404, description="No such integration.")
    def delete(self, name: str) -> dict[str, Any]:
        """Delete it with what is queued for it; the points customers got stay theirs."""
        svc = services()
        with svc.db.transaction() as session:
            row = svc.integrations.get(session, name)
            name = row.name
            svc.integrations.remove(session, row)
        note = None
        if name in svc.settings.integrations:
            note = f"[integrations.{name}] in the config file adds it again at the next start."
        return {"removed": name, "note": note}


def _activate(name: str, resync: bool) -> dict[str, Any]:
    svc = services()
    with svc.db.read() as session:
        name = svc.integrations.get(session, name).name
    done = activate(svc.db, svc.integrations, name, resync=resync)
    initial = None
    if done.initial_sync is not None and done.export is not None:
        initial = {"reason": str(done.initial_sync), "export_id": done.export.id}
    return {
        "created": done.result.created,
        "existing": done.result.existing,
        "message": done.result.message,
        "initial_sync": initial,
        "integration": _show(name),
    }


_INSTALL_ERRORS = (
    (404, None, "No such integration."),
    (409, ChoiceRequiredOut, "A setting must be picked first: the options are in the answer."),
    (422, None, "The platform refused the credentials or the account's set-up."),
    (502, None, "The platform did not answer (or kept asking to slow down)."),
)


def _document_install_errors(view: Any) -> Any:
    for status, schema, description in _INSTALL_ERRORS:
        view = blp.alt_response(status, schema=schema, description=description)(view)
    return view


@blp.route(PATH + "/install", methods=["POST"])
@blp.arguments(InstallIn)
@blp.response(200, Installed)
@_document_install_errors
def install(body: dict[str, Any], name: str) -> dict[str, Any]:
    """Check the credentials and create the fields; the first success (or a new target, or
    resync) queues the initial sync of every customer."""
    return _activate(name, body["resync"])


@blp.route(PATH + "/enable", methods=["POST"])
@blp.response(200, Installed)
@_document_install_errors
def enable(name: str) -> dict[str, Any]:
    """Install a disabled (or never installed) integration: delivery resumes."""
    return _activate(name, resync=False)


@blp.route(PATH + "/disable", methods=["POST"])
@blp.response(200, IntegrationOut)
@blp.alt_response(404, description="No such integration.")
def disable(name: str) -> dict[str, Any]:
    """Stop syncing to it: nothing more is queued or sent."""
    svc = services()
    with svc.db.transaction() as session:
        row = svc.integrations.get(session, name)
        svc.integrations.disable(row)
        name = row.name
    return _show(name)


@blp.route(PATH + "/rotate-webhook", methods=["POST"])
@blp.arguments(RotateIn)
@blp.response(200, Rotated)
@blp.alt_response(404, description="No such integration.")
def rotate_webhook(body: dict[str, Any], name: str) -> dict[str, Any]:
    """A new webhook URL (and secret when asked), shown this once; the old ones are refused
    from now on."""
    svc = services()
    with svc.db.transaction() as session:
        row = svc.integrations.get(session, name)
        rotated = {"webhook_url": svc.integrations.rotate_webhook(row)}
        if body["secret"]:
            rotated["webhook_secret"] = svc.integrations.rotate_webhook_secret(row)
    return rotated
