"""Keeps this process under Splio's per-second limits, per path family.

The host's rate limiter counts ``push_contact`` calls, but one call may PATCH up to a thousand
existing contacts, each a request against Splio's 20 requests/s on ``data/contacts``; install
makes several calls against the 10/s of everything else. Splio counts per client IP, so every
integration of this process talking to the same API host shares the same windows.

The limiter mirrors Splio's own rule (at most N requests in any window), slightly tighter, so a
burst after a quiet moment goes out at once and a long run settles at the limit.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

# A little under Splio's 20/s and 10/s, over a slightly longer window: the requests reach
# Splio with some jitter, and Splio's clock is not ours.
CONTACTS_LIMIT = 19
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


_windows: dict[tuple[str, bool], SlidingWindow] = {}
_windows_lock = threading.Lock()


def window_for(api_url: str, path: str) -> SlidingWindow:
    contacts = is_contacts_path(path)
    key = (api_url.rstrip("/").lower(), contacts)
    with _windows_lock:
        window = _windows.get(key)
        if window is None:
            window = _windows[key] = SlidingWindow(CONTACTS_LIMIT if contacts else OTHERS_LIMIT)
        return window


def reset_windows() -> None:
    """Forget every request window (tests, where each starts against a fresh fake)."""
    with _windows_lock:
        _windows.clear()
