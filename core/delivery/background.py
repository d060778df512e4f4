"""The background work of a process: the delivery worker (live changes and exports)."""

from __future__ import annotations

import gc
import logging
import threading

from pointbridge.delivery.wakeup import listen
from pointbridge.services import Services

log = logging.getLogger(__name__)

# A delivery call allocates thousands of short-lived containers (rows, contacts, their JSON
# dicts), nearly all freed by reference counting; CPython's default of a young-generation
# collection every 700 allocations spent about a tenth of the worker's CPU looking for
# cycles among them (bench/delivery.py: 17.5 instead of 20-23 ms of CPU per 500 contacts).
GC_THRESHOLDS = (50_000, 50, 100)


def tune_garbage_collector() -> None:
    """For a long-running server or worker process: collect cycles less often, and leave
    the objects loaded at start-up (modules, app, models) out of every collection."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def start_background(
    services: Services,
    stop: threading.Event,
    *,
    wakeup: threading.Event | None = None,
    idle: float = 1.0,
    lease_seconds: float = 30.0,
) -> list[threading.Thread]:
    worker = services.worker(lease_seconds=lease_seconds)
    threads = []
    if services.db.is_postgres:
        # Commits of other processes (the API, the CLI, the nightly job) wake this worker.
        wakeup = wakeup or threading.Event()
        threads.append(
            threading.Thread(
                target=listen,
                args=(services.db, wakeup, stop),
                name="pointbridge-listen",
                daemon=True,
            )
        )
    threads += [
        threading.Thread(
            target=worker.run_forever,
            args=(stop, wakeup),
            kwargs={"idle": idle},
            name="pointbridge-worker",
            daemon=True,
        ),
    ]
    for thread in threads:
        thread.start()
    return threads
