"""The JSON body check every API request passes before its arguments are read."""

from __future__ import annotations

import json

from flask import abort, request

from pointbridge import untrusted_json


def check_json_body() -> None:
    """A body sent as JSON must parse, or the request is a 400 saying what is wrong with it."""
    if not request.is_json:
        return
    body = request.get_data(cache=True)
    if not body:
        return
    try:
        # UTF-8 only, as webargs reads it after us; json.loads alone would also take UTF-16.
        untrusted_json.loads(body.decode("utf-8"))
    except untrusted_json.UnreadableJson as exc:
        abort(400, description=str(exc))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        abort(400, description=f"The request body is not valid JSON: {exc}")
