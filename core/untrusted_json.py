"""Reading JSON that anyone on the internet may have sent (webhooks, REST bodies)."""

from __future__ import annotations

import json
import sys
from typing import Any

# Far deeper than any body pointbridge takes, far shallower than Python's recursion limit, so
# no later parse (webargs', a plugin's) and no error message that prints the value can hit it.
MAX_DEPTH = 32


class UnreadableJson(Exception):
    """Valid JSON that nobody legitimate sends; the message says which rule it broke."""


def loads(text: str | bytes) -> Any:
    """``json.loads``, refusing what could exhaust the stack or the CPU: nesting deeper than
    ``MAX_DEPTH`` and integers past Python's digit limit raise ``UnreadableJson``. Broken
    syntax raises ``json.JSONDecodeError``, for the caller to explain."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise UnreadableJson(_TOO_DEEP) from None
    except ValueError:
        # json.loads raises a plain ValueError for an integer over the digit limit.
        raise UnreadableJson(
            f"The request body holds a number longer than {sys.get_int_max_str_digits()} digits."
        ) from None
    if _nesting_exceeds(value, MAX_DEPTH):
        raise UnreadableJson(_TOO_DEEP)
    return value


_TOO_DEEP = f"The request body is JSON nested more than {MAX_DEPTH} levels deep."


def _nesting_exceeds(value: Any, limit: int) -> bool:
    # A loop, not recursion: the point is to stay off the stack.
    pending = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth == limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return False
