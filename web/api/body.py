"""The JSON body check every API request passes before its arguments are read."""

from __future__ import annotations

import json
import sys
from typing import Any

from flask import abort, request

# Far deeper than any request the API takes, far shallower than Python's recursion limit, so
# the second parse (webargs', deeper in the stack) cannot hit that limit either.
MAX_DEPTH = 32
TOO_DEEP = f"The request body is nested more than {MAX_DEPTH} levels deep."


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in a parsed JSON value (a scalar is 1)."""
    depth, level = 0, [value]
    while level:
        depth += 1
        level = [
            child
            for item in level
            if isinstance(item, dict | list)
            for child in (item.values() if isinstance(item, dict) else item)
        ]
    return depth


def check_json_body() -> None:
    """A body sent as JSON must parse, or the request is a 400 saying what is wrong with it."""
    if not request.is_json:
        return
    body = request.get_data(cache=True)
    if not body:
        return
    try:
        # UTF-8 only, as webargs reads it after us; json.loads alone would also take UTF-16.
        parsed = json.loads(body.decode("utf-8"))
    except RecursionError:
        abort(400, description=TOO_DEEP)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        abort(400, description=f"The request body is not valid JSON: {exc}")
    except ValueError:
        # Python refuses to read integers this long (a guard against slow conversions).
        abort(
            400,
            description="The request body has a number longer than "
            f"{sys.get_int_max_str_digits()} digits.",
        )
    if _depth(parsed) > MAX_DEPTH:
        abort(400, description=TOO_DEEP)
