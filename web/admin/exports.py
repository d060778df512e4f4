"""The console's export page: "Export all customers" to one integration, its live progress
(rows, rate, time left), cancel and resume, and the CSV file where the plugin offers one. The
delivery worker sends the pages, as for ``pointbridge export`` and the management API."""

from __future__ import annotations

import io
import tempfile
from typing import Any

from flask import abort, flash, jsonify, redirect, render_template, request, send_file, url_for
from werkzeug.wrappers import Response

from pointbridge.contract.platform import Capability
from pointbridge.delivery.exports import (
    UNFINISHED,
    ExportError,
    Progress,
    cancel_export,
    latest_export,
    progress_of,
    queue_export,
    write_csv,
)
from pointbridge.web.admin.integrations import saved_integration
from pointbridge.web.admin.views import bp
from pointbridge.web.api.exports import progress_out
from pointbridge.web.services import services

# Where the CSV is written before it is sent: past this it goes to a temporary file.
CSV_IN_MEMORY = 8 * 1024 * 1024


def _progress(integration_id: int) -> Progress | None:
    job = latest_export(services().db, integration_id)
    return progress_of(job) if job is not None else None


def progress_json(progress: Progress | None) -> dict[str, Any]:
    """What the API answers, and whether the page is to keep following it."""
    if progress is None:
        return {"status": None, "unfinished": False}
    return {**progress_out(progress), "unfinished": progress.status in UNFINISHED}


@bp.route("/integrations/<name>/export", methods=["GET"])
def export(name: str) -> str:
    row = saved_integration(name)
    platform = services().host.platform(row.platform)
    progress = _progress(row.id)
    return render_template(
        "admin/export.html",
        row=row,
        title=platform.title,
        progress=progress,
        unfinished=progress is not None and progress.status in UNFINISHED,
        csv=platform.supports(Capability.CSV_EXPORT),
    )


@bp.route("/integrations/<name>/export/progress", methods=["GET"])
def export_progress(name: str) -> Response:
    return jsonify(progress_json(_progress(saved_integration(name).id)))


@bp.route("/integrations/<name>/export", methods=["POST"])
def change_export(name: str) -> Response:
    """``action``: start (or resume the unfinished one), restart, or cancel."""
    row = saved_integration(name)
    svc = services()
    action = request.form.get("action", "start")
    if action == "cancel":
        cancelled = cancel_export(svc.db, row.id)
        flash("Export cancelled." if cancelled else "No export was running.")
    elif action in ("start", "restart"):
        try:
            queue_export(svc.db, row.id, restart=action == "restart")
        except ExportError as refused:
            flash(str(refused), "error")
        else:
            svc.outbox.wake()
            flash("Export started." if action == "restart" else "Export queued.")
    else:
        abort(400, description=f"Unknown action {action!r}: start, restart or cancel.")
    return redirect(url_for("admin.export", name=row.name))


@bp.route("/integrations/<name>/export.csv", methods=["GET"])
def export_csv(name: str) -> Response:
    row = saved_integration(name)
    svc = services()
    if not svc.host.platform(row.platform).supports(Capability.CSV_EXPORT):
        abort(404, description=f"{row.platform} offers no CSV import file.")
    out = tempfile.SpooledTemporaryFile(CSV_IN_MEMORY, mode="w+b")  # noqa: SIM115 - send_file closes it
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    write_csv(svc.db, svc.integrations, row.name, text)
    text.detach()  # leaves ``out`` open for send_file, which closes it
    out.seek(0)
    return send_file(
        out, mimetype="text/csv", as_attachment=True, download_name=f"{row.name}-customers.csv"
    )
