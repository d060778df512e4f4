"""Sending a batch one request per item, for platforms without a batch endpoint."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

from pointbridge.contract.errors import PermanentError, RateLimited, TransientError
from pointbridge.contract.events import Event
from pointbridge.contract.platform import ItemFailure

Item = TypeVar("Item")


def send_each(
    items: Iterable[Item],
    send: Callable[[Item], object],
    key: Callable[[Item], int],
    *,
    looks_down: Callable[[], bool] = lambda: False,
    in_order: Callable[[Item], Hashable] | None = None,
) -> list[ItemFailure]:
    """Call ``send`` for each item in order; return the items that failed.

    - ``PermanentError`` or ``TransientError``: that item alone fails (a timeout is transient:
      the platform may have applied it, and the host's retry is an idempotent upsert);
    - ``RateLimited``: the platform stopped the call there, so this item and every untried one
      come back as ``RateLimited`` items, which cost no attempt and wait out ``retry_after``;
    - ``AuthError`` and ``ConfigurationError`` stop the whole call: every item would fail.

    ``looks_down`` is asked before each item (say, "two timeouts in a row"): once it is true,
    the untried rest come back as ``RateLimited`` too, so a platform that stopped answering
    costs neither an attempt per item nor a timeout per item, and the integration backs off.

    ``in_order`` keeps items that share its value in order (``lambda e: e.customer_id`` for a
    customer's events): once one fails transiently, the later ones are not tried and fail
    with a ``TransientError`` too, so the retries arrive in the order the items had.

    ``key`` is ``Contact.customer_id`` or ``Event.id``, the key of the item's ``ItemFailure``.
    """
    failures: list[ItemFailure] = []
    held: set[Hashable] = set()
    pending = iter(items)
    for item in pending:
        if looks_down():
            down = RateLimited("The platform stopped answering; not tried, sent later.")
            failures.append(ItemFailure(key(item), down))
            failures.extend(ItemFailure(key(untried), down) for untried in pending)
            break
        if in_order is not None and in_order(item) in held:
            waits = TransientError("Waits for an earlier item that failed; sent after it.")
            failures.append(ItemFailure(key(item), waits))
            continue
        try:
            send(item)
        except RateLimited as limited:
            failures.append(ItemFailure(key(item), limited))
            failures.extend(ItemFailure(key(untried), limited) for untried in pending)
            break
        except TransientError as error:
            failures.append(ItemFailure(key(item), error))
            if in_order is not None:
                held.add(in_order(item))
        except PermanentError as error:
            failures.append(ItemFailure(key(item), error))
    return failures


def send_events(
    events: Iterable[Event],
    send: Callable[[Event], object],
    *,
    looks_down: Callable[[], bool] = lambda: False,
) -> list[ItemFailure]:
    """``send_each`` for a platform that takes one event a request: failures keyed by
    ``Event.id``, and each customer's events kept in order (after one fails transiently, that
    customer's later ones wait for its retry)."""
    return send_each(
        events,
        send,
        key=lambda event: event.id,
        looks_down=looks_down,
        in_order=lambda event: event.customer_id,
    )
