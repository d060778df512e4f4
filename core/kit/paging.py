"""Reading a list a platform hands out a page at a time (fields, lists, address books)::

def page(offset: int) -> tuple[list[dict], int | None]:
    body = json_object(api.get("fields", params={"offset": offset, "limit": 100}))
    return body["data"], body.get("total")

fields = all_pages(page, page_size=100)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def all_pages(
    fetch: Callable[[int], tuple[Sequence[T], int | None]],
    page_size: int,
    *,
    max_pages: int = 1000,
) -> list[T]:
    """Every item of a list the platform hands out a page at a time.

    ``fetch(offset)`` returns the page starting at item ``offset`` (how many came so far; a
    platform that numbers its pages takes ``offset // page_size + 1``) and the total the
    platform reports, or ``None`` when it reports none. Collecting stops at that total, on a
    page shorter than ``page_size`` (so a missing total ends it too), or after ``max_pages``,
    so a platform that ignores the offset never keeps the call looping.
    """
    items: list[T] = []
    for _ in range(max_pages):
        page, total = fetch(len(items))
        items.extend(page)
        if len(page) < page_size or (total is not None and len(items) >= total):
            break
    return items
