"""Finding the items a bulk call refuses when the platform does not say which.

Some bulk endpoints answer a refused call with one error for the whole batch (or with a count
of what they took), so one bad address would sink every contact sent with it. ``refused_alone``
halves a refused batch and sends each half again, down to single items, and returns the items
refused on their own: ``log2(n)`` extra calls per bad item instead of one call per item.

Use it only where the call is all-or-nothing and an upsert, so resending the good items of a
refused batch changes nothing::

    def send(batch: Sequence[dict]) -> str | None:
        response = api.post("contacts/bulk", json=batch, passthrough=(400, 422))
        return None if response.ok else error_summary(response)

    for item, why in refused_alone(items, send):
        ...  # a PermanentError ItemFailure for this item's contact
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

Item = TypeVar("Item")


def refused_alone(
    items: Sequence[Item], send: Callable[[Sequence[Item]], str | None]
) -> list[tuple[Item, str]]:
    """Send ``items`` with ``send``, which returns ``None`` when the platform took the batch
    and the refusal otherwise; each item the platform refused alone, with its refusal.
    Errors ``send`` raises (a 429, a timeout) stop the search and propagate."""
    if not items:
        return []
    refusal = send(items)
    if refusal is None:
        return []
    if len(items) == 1:
        return [(items[0], refusal)]
    middle = len(items) // 2
    return refused_alone(items[:middle], send) + refused_alone(items[middle:], send)
