"""Pacing requests under a platform's rate limit: one budget per integration per process.

Only the worker holding an integration's lease sends for it, so a per-process budget is the
integration's whole budget. The host takes one slot per hook call; every request a plugin
makes through ``integration.client(...)`` takes one too, the first of a call using the slot the
host already took.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pointbridge.contract.errors import RateLimited


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``calls`` requests every ``per_seconds`` seconds, for one integration."""

    calls: int
    per_seconds: float

    @property
    def per_second(self) -> float:
        return self.calls / self.per_seconds


# Pacing a little under the declared rate keeps us below the limit in any window the
# platform measures, sliding or fixed, instead of bursting into its 429s.
SAFETY = 0.95

_call_slot = threading.local()


class Pacer:
    """Spaces requests at least ``1 / rate`` seconds apart (a token bucket holding one token)."""

    def __init__(
        self,
        limit: RateLimit | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit = limit
        self.interval = 0.0 if limit is None else 1.0 / (limit.per_second * SAFETY)
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> float:
        """Block until the next request may go; returns how long it waited."""
        with self._lock:
            now = self._clock()
            wait = max(0.0, self._next - now)
            self._next = max(now, self._next) + self.interval
        if wait:
            self._sleep(wait)
        return wait

    @contextmanager
    def call(self) -> Iterator[None]:
        """The host's side: one slot for a whole hook call, taken by its first request when
        that is sent, so requests reach the platform paced (a slot taken at the call's start
        would leave the building of a large body, which varies by tens of ms, between the
        spacing and the arrival, bunching arrivals into the platform's window). A call that
        sent no request through the integration's client takes its slot as it ends."""
        _call_slot.pacer = self
        try:
            yield
        finally:
            if getattr(_call_slot, "pacer", None) is self:
                _call_slot.pacer = None
                self.wait()

    def request(self) -> None:
        """A plugin's side: each HTTP request waits for a slot, the first of a call the host's."""
        if getattr(_call_slot, "pacer", None) is self:
            _call_slot.pacer = None
        self.wait()


_pacers: dict[tuple[int, str | None], Pacer] = {}
_pacers_lock = threading.Lock()


def pacer_for(integration_id: int, limit: RateLimit | None, name: str | None = None) -> Pacer:
    """The process-wide pacer of one integration: of its main limit (``Platform.rate_limit``),
    or of the named one (``Platform.rate_limits[name]``), a budget counted apart."""
    with _pacers_lock:
        pacer = _pacers.get((integration_id, name))
        if pacer is None or pacer.limit != limit:
            pacer = _pacers[integration_id, name] = Pacer(limit)
        return pacer


# A 429 that does not say how long to wait: back off from a second, doubling up to a minute,
# and start again from a second once a call goes through. (A fixed wait long enough for any
# per-minute window cost a small export 414 s across eleven such answers.)
UNSAID_FIRST_WAIT = 1.0
UNSAID_MAX_WAIT = 60.0
_unsaid_in_a_row: dict[int, int] = {}
_unsaid_lock = threading.Lock()


def throttle_wait(integration_id: int, throttled: Iterable[RateLimited]) -> float:
    """Seconds the integration pauses for these 429s: the platform's own ``Retry-After`` when
    it gave one, else the next step of the integration's backoff."""
    said = [error.retry_after for error in throttled if error.retry_after is not None]
    if said:
        return max(said)
    with _unsaid_lock:
        step = _unsaid_in_a_row.get(integration_id, 0)
        _unsaid_in_a_row[integration_id] = step + 1
    return min(UNSAID_FIRST_WAIT * 2**step, UNSAID_MAX_WAIT)


def throttle_cleared(integration_id: int) -> None:
    """A call went through: the next unsaid 429 waits a second again."""
    with _unsaid_lock:
        _unsaid_in_a_row.pop(integration_id, None)
