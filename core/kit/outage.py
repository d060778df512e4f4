"""Telling a platform that stopped answering from one failed request.

A plugin that sends item by item (``send_each``) should step over one timeout or 5xx, but when
requests keep failing the platform is down, and every item left would wait out its own
timeout. ``FailureStreak`` counts the requests that failed in a row and is what ``send_each``
asks through ``looks_down``::

    streak = FailureStreak(2)

    def send(event: Event) -> None:
        with streak.watch():
            response = api.post("events", json=payload(event), passthrough=(404,))
        ...  # judge the answer: a refusal is no outage, the platform did answer

    return send_each(events, send, key=lambda e: e.id, looks_down=streak)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pointbridge.contract.errors import TransientError


class FailureStreak:
    """Requests that raised ``TransientError`` in a row; ``streak()`` is true at ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_a_row = 0

    @contextmanager
    def watch(self) -> Iterator[None]:
        """Wrap the request alone: a ``TransientError`` raised inside lengthens the streak
        (and propagates), getting through ends it."""
        try:
            yield
        except TransientError:
            self.in_a_row += 1
            raise
        self.in_a_row = 0

    def __call__(self) -> bool:
        return self.in_a_row >= self.limit
