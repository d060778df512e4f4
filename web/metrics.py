"""``/metrics`` for Prometheus: delivery counters plus outbox gauges read at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core.db import Database
from core.outbox_admin import outbox_status
from web.services import services

bp = Blueprint("metrics", __name__)


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


@bp.get("/metrics")
def metrics() -> Response:
    svc = services()
    collector = OutboxCollector(svc.db)
    REGISTRY.register(collector)
    try:
        body = generate_latest(REGISTRY)
    finally:
        REGISTRY.unregister(collector)
    return Response(body, content_type=CONTENT_TYPE_LATEST)
