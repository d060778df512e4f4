"""``/r/<code>``: the referral link platforms get. A visit is counted, then sent on to the
shop's landing page with the code in its query; the page is the one configured, whatever the
link holds, so the link cannot send a visitor anywhere else."""

from __future__ import annotations

import re
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Response, redirect, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from pointbridge.loyalty.rules import REFERRAL_ALPHABET
from pointbridge.settings import DEFAULT_PUBLIC_URL, Settings
from pointbridge.storage.models import Customer, IntegrationRow, ReferralVisit
from pointbridge.web.services import services

bp = Blueprint("referrals", __name__)

# The landing page reads the code from this query parameter.
CODE_PARAMETER = "ref"
# Every code pointbridge makes is drawn from this alphabet and fits the column: anything else
# (NUL bytes, unicode, megabytes) is unknown before it reaches the database.
_CODE = re.compile(f"[{REFERRAL_ALPHABET}]{{1,32}}")

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1><p>{text}</p></body></html>
"""


def _not_found(title: str, text: str) -> Response:
    return Response(_PAGE.format(title=title, text=text), 404, content_type="text/html")


def landing_address(landing_url: str, code: str) -> str:
    """``landing_url`` with the code added to its query; the URL's own query is kept as written."""
    parts = urlsplit(landing_url)
    added = urlencode({CODE_PARAMETER: code})
    query = f"{parts.query}&{added}" if parts.query else added
    return parts._replace(query=query).geturl()


@bp.get("/r/", defaults={"code": ""})
@bp.get("/r/<path:code>")
def visit(code: str) -> Response:
    svc = services()
    landing_url = svc.settings.referral_landing_url
    if landing_url is None:
        return _not_found(
            "Referral links are not set up yet",
            "The shop has not set where its referral links lead "
            "([pointbridge] referral_landing_url).",
        )
    customer_id = None
    if _CODE.fullmatch(code):
        with svc.db.read() as session:
            customer_id = session.scalar(select(Customer.id).where(Customer.referral_code == code))
    if customer_id is None:
        return _not_found(
            "Unknown referral link",
            "This referral link is unknown: check that it was copied whole, or ask for it again.",
        )
    # A HEAD is a link checker's probe, not a visitor.
    if request.method == "GET":
        with svc.db.transaction() as session:
            session.add(ReferralVisit(customer_id=customer_id))
    return redirect(landing_address(landing_url, code), 302)


def startup_warnings(settings: Settings, session: Session) -> list[str]:
    """One line per setting that leaves the links platforms get broken, once there are
    integrations to send them."""
    if session.scalar(select(IntegrationRow.id).limit(1)) is None:
        return []
    warnings = []
    if settings.public_url.rstrip("/") == DEFAULT_PUBLIC_URL:
        warnings.append(
            f"warning: public_url is the default {DEFAULT_PUBLIC_URL}, which platforms and "
            "customers cannot reach: set [pointbridge] public_url (or POINTBRIDGE_PUBLIC_URL) "
            "to this server's public address."
        )
    # With a referral_base_url of their own, links never lead to /r/.
    if settings.referral_landing_url is None and settings.referral_base_url is None:
        warnings.append(
            "warning: referral links (/r/CODE) answer 404 until [pointbridge] "
            "referral_landing_url names the shop page they lead to."
        )
    return warnings
