"""Splio's two request budgets: contacts on the integration's shared pacer, the rest apart.

Splio allows 20 requests/s on ``data/contacts`` and 10/s on everything else, each counted in
its own window, per client IP. The platform declares the 20/s (``RATE_LIMIT``): the host paces
each hook call with it, and the client paces each ``data/contacts`` request through the same
``core.ratelimit.pacer_for`` budget, so the thousand PATCHes of one call and every other call
of the integration stay under it together.

Requests off ``data/contacts`` (authentication, the unique key, field listing and creation:
install's calls, and a token renewal now and then) do not use that budget, as Splio does not
count them in it; they pass a small sliding window of Splio's 10/s instead. It is kept per
API host rather than per integration because Splio counts per IP, so two integrations
installing at once share those 10/s.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from pointbridge.ratelimit import RateLimit

# Splio: 20 requests/s on data/contacts (the most the integration ever sends), per client IP.
RATE_LIMIT = RateLimit(20, 1.0)

# A little under Splio's 10/s, over a slightly longer window: the requests reach Splio with
# some jitter, and Splio's clock is not ours.
OTHERS_LIMIT = 9
WINDOW_SECONDS = 1.05


class SlidingWindow:
    """At most ``limit`` request starts in any ``window`` seconds, across threads."""

    def __init__(
        self,
        limit: int,
        window: float = WINDOW_SECONDS,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._starts: deque[float] = deque()
        self._lock = threading.Lock()

    def wait(self) -> float:
        """Block until a request may start; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                while self._starts and now - self._starts[0] >= self.window:
                    self._starts.popleft()
                if len(self._starts) < self.limit:
                    self._starts.append(now)
                    return waited
                delay = self.window - (now - self._starts[0])
            # Sleep outside the lock; another thread may take the freed slot first, so loop.
            self._sleep(delay)
            waited += delay


def is_contacts_path(path: str) -> bool:
    """Splio's ``data/contacts`` family, limited apart from everything else."""
    path = path.lstrip("/")
    return path == "data/contacts" or path.startswith("data/contacts/")


_windows: dict[str, SlidingWindow] = {}
_windows_lock = threading.Lock()


def others_window(api_url: str) -> SlidingWindow:
    """The window of the requests off ``data/contacts`` to this API host."""
    key = api_url.rstrip("/").lower()
    with _windows_lock:
        window = _windows.get(key)
        if window is None:
            window = _windows[key] = SlidingWindow(OTHERS_LIMIT)
        return window


def reset_windows() -> None:
    """Forget every request window (tests, where each starts against a fresh fake)."""
    with _windows_lock:
        _windows.clear()
