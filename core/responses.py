"""Reading what a platform's API answers: the JSON object of a success, every page of a list.

``ApiClient`` turns failed responses into errors; what a successful one holds is the plugin's
to read. Two readings every HTTP plugin needs::

    body = json_object(api.get("account"))  # a dict, or TransientError

    def page(offset: int) -> tuple[list[dict], int | None]:
        body = json_object(api.get("fields", params={"offset": offset, "limit": 100}))
        return body["data"], body.get("total")

    fields = all_pages(page, page_size=100)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests

from pointbridge.errors import TransientError

T = TypeVar("T")


def json_object(response: requests.Response) -> dict[str, Any]:
    """The JSON object a successful response holds.

    Anything else is a ``TransientError``: a 2xx that is not JSON is a proxy's or a maintenance
    page, worth another try later, not the platform's answer. The message names the method and
    path, never the query (some platforms take the API key there).
    """
    where = f"{response.request.method} {urlsplit(response.url).path}"
    try:
        body = response.json()
    except ValueError as exc:
        raise TransientError(f"{where}: the platform answered with something not JSON.") from exc
    if not isinstance(body, dict):
        raise TransientError(f"{where}: the platform answered a {type(body).__name__}, no object.")
    return body


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
