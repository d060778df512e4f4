"""Prometheus metrics of delivery; the outbox gauges are read from the database at scrape."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
