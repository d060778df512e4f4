"""The hot path of ``POST /api/customers/{id}/transactions``: a body that is plainly valid is
read and answered without webargs and marshmallow, which cost more CPU than the database.

There is one rule, the schema's (``TransactionIn``): ``transaction_body`` accepts only bodies
the schema takes, giving the same values, and answers None for anything else; the caller then
lets the schema read the request, so every refusal is the schema's, in its words. The answer
is built as ``TransactionOut`` dumps it. ``tests/test_lean_path.py`` holds both to the schemas.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from pointbridge.loyalty.ledger_sql import Entry
from pointbridge.loyalty.rules import MAX_POINTS, REASON_PATTERN
from pointbridge.loyalty.schema import has_unstorable

View = TypeVar("View", bound=Callable[..., Any])

REFERENCE_LENGTH = 200  # TransactionIn.reference
_FIELDS = frozenset(("points", "reason", "reference", "expires_at"))
# The plainest ISO date; the schema (date.fromisoformat) also takes others (29990102), and
# reads them itself.
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def transaction_body(body: Any) -> dict[str, Any] | None:
    """What ``TransactionIn`` would load from ``body``, or None unless it plainly takes it."""
    if type(body) is not dict or not body.keys() <= _FIELDS:
        return None
    points, reason = body.get("points"), body.get("reason")
    # ``type is int``: a boolean is an int to Python; the schema refuses it in its own words.
    if type(points) is not int or not points or not -MAX_POINTS <= points <= MAX_POINTS:
        return None
    if type(reason) is not str or REASON_PATTERN.fullmatch(reason) is None:
        return None
    loaded: dict[str, Any] = {"points": points, "reason": reason}
    if "reference" in body:
        reference = body["reference"]
        if type(reference) is not str or not 0 < len(reference) <= REFERENCE_LENGTH:
            return None
        if has_unstorable(reference):
            return None
        loaded["reference"] = reference
    if "expires_at" in body:
        expires = _future_date(body["expires_at"])
        if expires is None or points < 0:
            return None
        loaded["expires_at"] = expires
    return loaded


def _future_date(value: Any) -> date | None:
    if type(value) is not str or _ISO_DATE.fullmatch(value) is None:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None
    return day if day > date.today() else None


def transaction_out(entry: Entry, created: bool) -> dict[str, Any]:
    """``TransactionOut``'s dump of ``entry``."""
    expires = entry.expires_on
    return {
        "id": entry.id,
        "points": entry.points,
        "reason": entry.reason,
        "reference": entry.reference,
        "expires_on": None if expires is None else expires.isoformat(),
        "created_at": entry.created_at.isoformat(),
        "balance": entry.balance,
        "replayed": not created,
    }


def documented_as(documented: Callable[..., Any]) -> Callable[[View], View]:
    """Give a view the OpenAPI description flask-smorest's decorators gave ``documented``:
    the hot path's view is described by the schemas whose rule it keeps."""

    def decorate(view: View) -> View:
        view._apidoc = documented._apidoc  # type: ignore[attr-defined]
        return view

    return decorate
