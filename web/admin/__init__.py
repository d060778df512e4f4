"""The admin console: server-rendered pages under /admin on the same services as the API."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from flask import (
    Flask,
    Request,
    Response,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, CSRFProtect
from itsdangerous import URLSafeTimedSerializer
from werkzeug.exceptions import HTTPException

from pointbridge.access.users import get_admin
from pointbridge.storage.secrets import load_key
from pointbridge.web.admin import exports, integrations  # noqa: F401 - their routes join bp
from pointbridge.web.admin.views import bp
from pointbridge.web.services import services

PREFIX = "/admin"
# Endpoints a logged-out visitor may reach.
OPEN_ENDPOINTS = {"admin.login", "admin.static"}

csrf = CSRFProtect()


def derived_key(purpose: bytes) -> bytes:
    """A key for one purpose, derived from the key that encrypts secrets at rest."""
    settings = services().settings
    return hmac.new(
        load_key(settings.secret_key, settings.instance_path), purpose, hashlib.sha256
    ).digest()


class AdminSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, scoped to /admin, signed with a key derived from pointbridge's
    own, so every process of one install agrees and a restart logs nobody out.

    The key is loaded only for a request that carries the cookie or writes one, so API and
    webhook traffic (and read-only commands) never create a key file."""

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        return URLSafeTimedSerializer(
            derived_key(b"pointbridge admin session"),
            salt=self.salt,
            serializer=self.serializer,
            signer_kwargs={
                "key_derivation": self.key_derivation,
                "digest_method": self.digest_method,
            },
        )

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)

    def get_cookie_path(self, app: Flask) -> str:
        return PREFIX

    def get_cookie_secure(self, app: Flask) -> bool:
        # Behind a TLS proxy the request itself is plain http; the public URL says https.
        return request.is_secure or services().settings.public_url.startswith("https://")

    def get_cookie_samesite(self, app: Flask) -> str:
        return "Lax"

    def get_cookie_httponly(self, app: Flask) -> bool:
        return True


@bp.before_request
def _guard() -> Any:
    if "WTF_CSRF_SECRET_KEY" not in current_app.config:
        current_app.config["WTF_CSRF_SECRET_KEY"] = derived_key(b"pointbridge admin csrf")
    # Every form of the console posts its CSRF token; nothing else of the app uses cookies.
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    user_id = session.get("user_id")
    admin = get_admin(services().db, user_id) if isinstance(user_id, int) else None
    if admin is None:
        session.clear()
        return redirect(url_for("admin.login", next=request.full_path.rstrip("?")))
    g.admin = admin
    return None


@bp.errorhandler(CSRFError)
def _csrf_refused(error: CSRFError) -> tuple[str, int]:
    return render_template(
        "admin/error.html", message=f"{error.description} Reload the page and try again."
    ), 400


@bp.errorhandler(HTTPException)
def _refused(error: HTTPException) -> tuple[str, int]:
    # The console's refusals are pages, where the API's are JSON.
    return render_template("admin/error.html", message=error.description), error.code or 500


@bp.after_request
def _no_store(response: Response) -> Response:
    # Balances and errors of customers stay out of shared caches and the back button.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def init_admin(app: Flask) -> None:
    # CSRF is checked by the console's own hook above: the REST API (bearer tokens) and the
    # platforms' webhooks post no cookies and no forms.
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    app.session_interface = AdminSessionInterface()
    csrf.init_app(app)
    app.register_blueprint(bp, url_prefix=PREFIX)
