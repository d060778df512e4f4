"""Pacing requests under a platform's rate limit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from core.platform import RateLimit

# Pacing a little under the declared rate keeps us below the limit in any window the
# platform measures, sliding or fixed, instead of bursting into its 429s.
SAFETY = 0.95


class Pacer:
    """Spaces calls at least ``1 / rate`` seconds apart (a token bucket holding one token)."""

    def __init__(
        self,
        limit: RateLimit | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 0.0 if limit is None else 1.0 / (limit.per_second * SAFETY)
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> float:
        """Block until the next call may go; returns how long it waited."""
        with self._lock:
            now = self._clock()
            wait = max(0.0, self._next - now)
            self._next = max(now, self._next) + self.interval
        if wait:
            self._sleep(wait)
        return wait
