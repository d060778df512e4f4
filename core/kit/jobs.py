"""Waiting for a platform's asynchronous job: a bulk import answered with an id to poll.

Many platforms take a big batch as a job (``202 {"importId": "..."}``) and tell what became of
each item only once it has run. ``wait_for_job`` polls the job until it is done, within a time
budget::

    job_id = api.put("contacts/import", json=body).json()["importId"]
    result = wait_for_job(
        lambda: api.get(f"contacts/import/{job_id}").json(),
        lambda status: status["state"] != "running",
        what=f"Import {job_id}",
    )

A poll that fails (5xx, timeout, 429) is polled again within the budget: the job runs on at
the platform whatever happened to one poll, and giving up on it would make the host send the
batch again while the first job may still land later, over newer values. Only ``JobLost``
(the platform no longer knows the id) ends the wait early. A job still running when the budget
is spent raises ``TransientError``, so the host sends the batch again later: make the job an
upsert, and a repeat changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from pointbridge.contract.errors import RateLimited, TransientError

Status = TypeVar("Status")

# Jobs usually finish in seconds: poll soon, then less and less often.
DEFAULT_DELAYS: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0, 2.0)
DEFAULT_BUDGET = 60.0


class JobLost(TransientError):
    """The platform does not know the job it gave us (a 404 for its id): polling again will not
    help, sending the batch again will."""


def wait_for_job(
    poll: Callable[[], Status],
    finished: Callable[[Status], bool],
    *,
    what: str,
    delays: Sequence[float] = DEFAULT_DELAYS,
    budget: float = DEFAULT_BUDGET,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Status:
    """Call ``poll`` after each wait of ``delays`` (the last one repeating) and return the
    first status ``finished`` accepts.

    ``TransientError`` and ``RateLimited`` from a poll are polled again (after at least the
    ``retry_after`` the platform asked for); ``JobLost`` and any other error end the wait.
    ``what`` names the job in the ``TransientError`` raised once the next poll would fall
    past ``budget`` seconds.
    """
    deadline = clock() + budget
    attempt = 0
    last_error: TransientError | RateLimited | None = None
    while True:
        delay = delays[min(attempt, len(delays) - 1)]
        if isinstance(last_error, RateLimited) and last_error.retry_after:
            delay = max(delay, last_error.retry_after)
        if clock() + delay > deadline:
            why = f" (last poll: {last_error})" if last_error else ""
            raise TransientError(
                f"{what} has not finished within {budget:g} s{why}; the batch will be sent again."
            )
        sleep(delay)
        attempt += 1
        try:
            status = poll()
        except JobLost:
            raise
        except (TransientError, RateLimited) as exc:
            last_error = exc
            continue
        last_error = None
        if finished(status):
            return status
