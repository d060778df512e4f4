"""The JSON body check every API request passes before its arguments are read."""

from __future__ import annotations

import json
from typing import Any

from flask import abort, g, request

from pointbridge import untrusted_json

_NO_BODY = object()


def check_json_body() -> None:
    """A body sent as JSON must parse, or the request is a 400 saying what is wrong with it.
    The value is kept for ``json_body``: the hot path reads it without parsing it again."""
    g.pointbridge_json = _NO_BODY
    if not request.is_json:
        return
    body = request.get_data(cache=True)
    if not body:
        return
    try:
        # UTF-8 only, as webargs reads it after us; json.loads alone would also take UTF-16.
        g.pointbridge_json = untrusted_json.loads(body.decode("utf-8"))
    except untrusted_json.UnreadableJson as exc:
        abort(400, description=str(exc))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        abort(400, description=f"The request body is not valid JSON: {exc}")


def json_body() -> Any:
    """The JSON body ``check_json_body`` read; None when the request sent none."""
    value = g.get("pointbridge_json", _NO_BODY)
    return None if value is _NO_BODY else value
