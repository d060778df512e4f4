"""The console's integration pages: add one, edit it, activate it (the install, with the
platform's own words when it refuses), pick the list the platform offers, and the webhook URL
and secret to copy. Built on the services the CLI and the management API use."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from pointbridge.contract.errors import ChoiceRequired, ConfigurationError, DeliveryError
from pointbridge.contract.events import EventType
from pointbridge.contract.platform import Capability, Platform
from pointbridge.delivery.exports import activate
from pointbridge.integrations import IntegrationError, IntegrationNotFound
from pointbridge.plugins import UnknownPlatform
from pointbridge.storage.models import IntegrationRow, IntegrationStatus
from pointbridge.storage.secrets import redact
from pointbridge.web.admin.forms import (
    changed_values,
    number_list,
    reward_rows,
    saved_notice_days,
    setting_fields,
)
from pointbridge.web.admin.views import bp
from pointbridge.web.api.integrations import SERVER_FILE_PLATFORMS, IntegrationCreate, storable
from pointbridge.web.services import services


def _platforms() -> list[Platform]:
    # A platform that writes files on the server is set up on the server, as over the API.
    host = services().host
    return [
        host.platform(name) for name in sorted(host.platforms) if name not in SERVER_FILE_PLATFORMS
    ]


def _platform(name: str) -> Platform:
    if name in SERVER_FILE_PLATFORMS:
        abort(403, description=f"A {name} integration is set up with `pointbridge integrations`.")
    try:
        return services().host.platform(name)
    except UnknownPlatform as exc:
        abort(404, description=str(exc))


def _page(
    platform: Platform,
    row: IntegrationRow | None,
    *,
    status: int = 200,
    error: str | None = None,
    choice: ChoiceRequired | None = None,
    posted: bool = False,
) -> tuple[str, int]:
    """The form, new (``row`` None) or saved; ``posted`` shows the refused form as typed."""
    form = request.form if posted else None
    svc = services()
    webhook = None
    if row is not None and platform.supports(Capability.WEBHOOKS):
        webhook = {
            "url": svc.integrations.webhook_url(row, reveal=False),
            "secret": redact(svc.integrations.webhook_secret(row)),
            "bodies": platform.webhook_bodies(sorted(row.list_rewards or {})),
        }
    notice_days = form.get("expiry_notice_days", "") if form else saved_notice_days(row)
    notify = form.get("expiry_notice") == "notify" if form else bool(notice_days)
    disabled = set(row.disabled_events or []) if row else set()
    thresholds = number_list(row.reward_thresholds or []) if row else ""
    page = render_template(
        "admin/integration.html",
        platform=platform,
        row=row,
        name=form.get("name", "") if form else "",
        fields=setting_fields(platform, row, form),
        field_prefix=form.get("field_prefix") if form else (row.field_prefix if row else ""),
        notify=notify,
        notice_days=notice_days,
        events=platform.supports(Capability.EVENTS),
        event_types=[(str(kind), str(kind) not in disabled) for kind in EventType],
        reward_thresholds=form.get("reward_thresholds", "") if form else thresholds,
        rewards=reward_rows(row, form) if platform.supports(Capability.WEBHOOKS) else None,
        webhook=webhook,
        error=error,
        choice=choice,
    )
    return page, status


def saved_integration(name: str) -> IntegrationRow:
    """The integration a console URL names, detached from its session; a 404 page if none."""
    svc = services()
    with svc.db.read() as session:
        try:
            row = svc.integrations.get(session, name)
        except IntegrationNotFound as exc:
            abort(404, description=str(exc))
        session.expunge(row)
    return row


def _unstorable(name: str | None, values: dict[str, Any]) -> str | None:
    """What the management API would refuse in the name or values before the database could
    (text PostgreSQL cannot keep, a name too long or shaped like an id), in its words."""
    try:
        if name is not None:
            IntegrationCreate().load({"name": name, "platform": "-"})
        storable(values)
    except ValidationError as exc:
        named = exc.normalized_messages().items()
        return "; ".join(
            " ".join(map(str, text)) if key == "_schema" else f"{key}: {' '.join(map(str, text))}"
            for key, text in named
        )
    return None


def _saved(name: str) -> tuple[Platform, IntegrationRow]:
    row = saved_integration(name)
    return _platform(row.platform), row


def _activate(name: str) -> Response | tuple[str, int]:
    """Install it: the result on the integration's page, or the page again with what the
    platform said (nothing is active until an install succeeds)."""
    svc = services()
    try:
        done = activate(svc.db, svc.integrations, name)
    except ChoiceRequired as exc:
        return _page(*_saved(name), status=409, choice=exc)
    except ConfigurationError as exc:
        return _page(*_saved(name), status=422, error=str(exc))
    except DeliveryError as exc:
        message = f"The platform did not answer as expected: {exc}. Try again in a while."
        return _page(*_saved(name), status=502, error=message)
    svc.outbox.wake()
    flash(f"Activated. {done.result.message}".strip())
    if done.initial_sync is not None:
        flash(f"Every customer is being sent to it ({done.initial_sync}): see Export.")
    return redirect(url_for("admin.integration", name=name))


@bp.context_processor
def _file_platforms() -> dict[str, Any]:
    # The dashboard links to no page that would only refuse (see _platform).
    return {"server_file_platforms": SERVER_FILE_PLATFORMS}


@bp.route("/integrations/new", methods=["GET"])
def new_integration() -> Any:
    chosen = request.args.get("platform")
    if not chosen:
        return render_template("admin/platforms.html", platforms=_platforms())
    return _page(_platform(chosen), None)


@bp.route("/integrations/new", methods=["POST"])
def add_integration() -> Any:
    platform = _platform(request.args.get("platform", ""))
    name = request.form.get("name", "").strip()
    values = changed_values(platform, None, request.form)
    problem = _unstorable(name, values)
    if not problem:
        svc = services()
        try:
            with svc.db.transaction() as session:
                svc.integrations.add(session, name, platform.name, values)
        except IntegrationError as exc:
            problem = str(exc)
    if problem:
        return _page(platform, None, status=422, error=problem, posted=True)
    return _activate(name)


@bp.route("/integrations/<name>", methods=["GET"])
def integration(name: str) -> Any:
    return _page(*_saved(name))


@bp.route("/integrations/<name>", methods=["POST"])
def edit_integration(name: str) -> Any:
    platform, row = _saved(name)
    svc = services()
    values = changed_values(platform, row, request.form)
    if problem := _unstorable(None, values):
        return _page(platform, row, status=422, error=problem, posted=True)
    try:
        with svc.db.transaction() as session:
            changed = svc.integrations.update(svc.integrations.get(session, row.id), values)
    except IntegrationError as exc:
        return _page(platform, row, status=422, error=str(exc), posted=True)
    if row.status != IntegrationStatus.ACTIVE or svc.integrations.needs_install(changed):
        return _activate(name)
    flash("Saved." if changed else "Nothing changed.")
    return redirect(url_for("admin.integration", name=name))


@bp.route("/integrations/<name>/webhook", methods=["GET"])
def webhook(name: str) -> Response:
    """The whole webhook URL and secret, for the copy buttons only: the page shows them
    redacted, so neither a screenshot nor the page's HTML holds them."""
    _, row = _saved(name)
    svc = services()
    return jsonify(
        url=svc.integrations.webhook_url(row), secret=svc.integrations.webhook_secret(row)
    )
