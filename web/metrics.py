"""``/metrics`` for Prometheus: delivery counters plus outbox gauges read at scrape time."""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable, Iterator

from flask import Blueprint, Response, abort, current_app, request
from flask.blueprints import BlueprintSetupState
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from pointbridge.delivery.admin import outbox_status
from pointbridge.delivery.metrics import MULTIPROCESS_ENV
from pointbridge.storage.db import Database
from pointbridge.web.services import services

bp = Blueprint("metrics", __name__)
_REGISTRY_KEY = "pointbridge.delivery.metrics"


class OutboxCollector(Collector):
    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[GaugeMetricFamily]:
        rows = GaugeMetricFamily(
            "pointbridge_outbox_rows", "Outbox rows by state", labels=["integration", "state"]
        )
        oldest = GaugeMetricFamily(
            "pointbridge_outbox_oldest_pending_seconds",
            "Age of the oldest undelivered row",
            labels=["integration"],
        )
        for line in outbox_status(self.db):
            for state in ("pending", "retrying", "dead"):
                rows.add_metric([line.integration, state], getattr(line, state))
            oldest.add_metric([line.integration], line.oldest_pending_seconds or 0.0)
        yield rows
        yield oldest


class ProcessWideMetrics(Collector):
    """What the process-wide registry holds: the delivery counters (core.metrics), which every
    app in the process shares, and the Python runtime's figures."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


@bp.record_once
def _create_registry(state: BlueprintSetupState) -> None:
    # One registry per app, built once: registering a collector on the global registry per
    # scrape made concurrent scrapes collide ("Duplicated timeseries").
    registry = CollectorRegistry()
    if folder := os.environ.get(MULTIPROCESS_ENV):
        # A web process of several: the delivery figures are the background process's.
        MultiProcessCollector(registry, folder)
    else:
        registry.register(ProcessWideMetrics())
    registry.register(OutboxCollector(state.app.extensions["pointbridge"].db))
    state.app.extensions[_REGISTRY_KEY] = registry


def _require_metrics_token() -> None:
    expected = services().settings.metrics_token
    if expected is None:
        return
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    given = token.strip().encode() if scheme.lower() == "bearer" else b""
    if not hmac.compare_digest(given, expected.encode()):
        abort(401, description="Send 'Authorization: Bearer <POINTBRIDGE_METRICS_TOKEN>'.")


@bp.get("/metrics")
def metrics() -> Response:
    _require_metrics_token()
    body = generate_latest(current_app.extensions[_REGISTRY_KEY])
    return Response(body, content_type=CONTENT_TYPE_LATEST)
