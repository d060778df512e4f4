"""The console's pages: log-in, dashboard, deliveries (dead letters, replay), customers."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from pointbridge.access.users import LoginRefused, log_in
from pointbridge.delivery import admin as outbox_admin
from pointbridge.integrations import IntegrationNotFound
from pointbridge.loyalty.rules import LoyaltyError
from pointbridge.loyalty.schema import has_unstorable
from pointbridge.storage.models import IntegrationRow, LedgerEntry, PointLot
from pointbridge.storage.sql import id_in
from pointbridge.web.services import services

bp = Blueprint(
    "admin",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)
LEDGER_SHOWN = 50
DEAD_SHOWN = 200


def _safe_next(target: str | None) -> str:
    # Only a page of the console: never another host (//evil.example) after logging in.
    if target and target.startswith("/admin") and not target.startswith("//"):
        return target
    return url_for("admin.dashboard")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "GET":
        return render_template("admin/login.html", email="")
    email = request.form.get("email", "")
    try:
        admin = log_in(
            services().db, email, request.form.get("password", ""), request.remote_addr or "?"
        )
    except LoginRefused as refused:
        page = render_template("admin/login.html", email=email, error=str(refused))
        headers = {"Retry-After": str(refused.retry_after)} if refused.retry_after else {}
        return page, 429 if refused.retry_after else 401, headers
    # A fresh session: whatever the visitor held before logging in is not carried over.
    session.clear()
    session["user_id"] = admin.id
    return redirect(_safe_next(request.args.get("next")))


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    session.clear()
    flash("You are logged out.")
    return redirect(url_for("admin.login"))


@bp.route("/")
def dashboard() -> str:
    svc = services()
    with svc.db.read() as session_:
        rows = session_.execute(
            select(
                IntegrationRow.name,
                IntegrationRow.platform,
                IntegrationRow.status,
                IntegrationRow.last_error,
            ).order_by(IntegrationRow.name)
        ).all()
    health = {line.integration: line for line in outbox_admin.outbox_status(svc.db)}
    delivered = outbox_admin.last_delivered(svc.db)
    return render_template(
        "admin/dashboard.html",
        integrations=[
            {
                "name": row.name,
                "platform": row.platform,
                "status": row.status,
                "last_error": row.last_error,
                "health": health.get(row.name),
                "last_delivered": delivered.get(row.name),
            }
            for row in rows
        ],
    )


@bp.route("/deliveries")
def deliveries() -> str | Response:
    integration = request.args.get("integration") or None
    try:
        letters = outbox_admin.dead_letters(services().db, integration, DEAD_SHOWN)
    except IntegrationNotFound as exc:
        flash(str(exc), "error")
        return redirect(url_for("admin.deliveries"))
    return render_template(
        "admin/deliveries.html", letters=letters, integration=integration, shown=DEAD_SHOWN
    )


@bp.route("/deliveries/replay", methods=["POST"])
def replay() -> Response:
    """Dead letters back to the queue: one (``id``), one integration's, or all."""
    raw_id = request.form.get("id", "").strip()
    integration = request.form.get("integration") or None
    # A crafted post: an id no row can have was a 500 (or, not a number, replayed every dead
    # letter); a name neither database can store was a 500 on PostgreSQL.
    row_id = id_in(raw_id)
    if raw_id and row_id is None:
        flash(f"There is no dead letter {raw_id[:40]!r}: nothing was queued again.", "error")
        return redirect(url_for("admin.deliveries"))
    if integration is not None and has_unstorable(integration):
        flash("There is no such integration: nothing was queued again.", "error")
        return redirect(url_for("admin.deliveries"))
    ids = [] if row_id is None else [row_id]
    try:
        result = outbox_admin.retry(services().db, integration, ids)
    except IntegrationNotFound as exc:
        flash(str(exc), "error")
        return redirect(url_for("admin.deliveries"))
    services().outbox.wake()
    flash(f"{result.revived} dead letter{'s' if result.revived != 1 else ''} queued again.")
    for name in result.reactivated:
        flash(f"{name} is active again.")
    return redirect(url_for("admin.deliveries", integration=integration))


@bp.route("/customers")
def customers() -> Any:
    email = request.args.get("email", "").strip()
    if not email:
        return render_template("admin/customers.html", email="", customer=None)
    svc = services()
    with svc.db.read() as session_:
        try:
            customer = svc.loyalty.find(session_, email)
        except LoyaltyError as exc:
            page = render_template(
                "admin/customers.html", email=email, customer=None, error=exc.message
            )
            return page, exc.status
        lots = session_.scalars(
            select(PointLot)
            .where(PointLot.customer_id == customer.id, PointLot.remaining > 0)
            .order_by(PointLot.expires_on, PointLot.id)
        ).all()
        ledger = session_.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.customer_id == customer.id)
            .order_by(LedgerEntry.id.desc())
            .limit(LEDGER_SHOWN)
        ).all()
        return render_template(
            "admin/customers.html",
            email=email,
            customer=customer,
            lots=lots,
            ledger=ledger,
            ledger_shown=LEDGER_SHOWN,
        )


@bp.context_processor
def _admin() -> dict[str, Any]:
    return {"admin": g.get("admin")}
