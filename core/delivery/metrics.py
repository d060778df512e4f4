"""Prometheus metrics of delivery; the outbox gauges are read from the database at scrape."""

from __future__ import annotations

import os

from prometheus_client import Counter, Histogram, values

# prometheus_client's own variable: the folder of the figures shared by several processes.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

DELIVERED = Counter("pointbridge_delivered_total", "Outbox rows delivered", ["integration", "kind"])
FAILED = Counter(
    "pointbridge_failed_total",
    "Outbox rows whose delivery failed (retried or dead)",
    ["integration", "kind"],
)
RATE_LIMITED = Counter(
    "pointbridge_rate_limited_total", "Calls the platform answered with 429", ["integration"]
)
DELIVERY_LATENCY = Histogram(
    "pointbridge_delivery_latency_seconds",
    "From the change's commit to its delivery",
    ["integration", "kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 15, 60, 300, 3600),
)
CALL_SECONDS = Histogram(
    "pointbridge_platform_call_seconds", "Duration of one plugin call", ["integration", "hook"]
)


def share_with_other_processes(folder: str) -> None:
    """Keep this process's delivery figures in files under ``folder``, where the web processes
    of ``pointbridge run --workers N`` read them (``MULTIPROCESS_ENV``): the delivery worker
    counts in one process, and ``/metrics`` is answered by whichever web process a scrape
    reaches. Called before the worker delivers anything: a figure already counted would
    stay in this process."""
    os.environ[MULTIPROCESS_ENV] = folder
    values.ValueClass = values.MultiProcessValue()
