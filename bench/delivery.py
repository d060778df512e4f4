"""Benchmark: how soon a change made over REST reaches each platform, and how fast the worker
drains a backlog.

1. *Latency*, per platform (SmartEmailing, Ecomail, Dotdigital, Splio): a fresh database of
   ``--customers`` customers (default 1,000, with marketing consent), one integration of the
   real plugin against the plugin's own fake (state kept, in a process of its own behind a
   front that answers each request ``--latency`` after it arrived, default 20 ms, and enforces
   the platform's documented limits with its 429: ``bench/fake_servers.py``), a real ``pointbridge
   run --workers 2 --threads 8`` (gunicorn's web processes, the delivery worker and scheduler
   beside them, as in production), the initial sync let through first. Then credits of one
   point over ``POST /api/customers/{id}/transactions`` at a fixed offered rate for
   ``--seconds`` (default 20; request n is sent at start + n / rate, the customers in turn).
   The offered rate is ``--rate`` (default 200 changes/s) or ``--load`` (default 0.8) of the
   platform's ceiling, whichever is lower: past its ceiling a platform's backlog only grows,
   and so does any latency figure. Commit-to-arrival per change (commit = when the API's answer
   arrived, just after it): the first contact update at the fake carrying that balance or a
   later one, and, on the platforms that take events, the change's credit-changed event.
   Printed: offered and achieved rate (**NOT REACHED** when under 95 % of the offered), p50 and
   p99 of both, changes that never arrived, 429s, and the ceiling with its formula.
2. *Throughput*: ``--contacts`` customers (default 100,000) each with a pending contact update,
   drained by one worker against the delivery tests' fake platform
   (``tests/delivery/delivery_fakeesp.py``: 500 contacts a call, ``max_in_flight=2``, each call
   answered after ``--latency``), ``--repeat`` times (default 3; the median counts). Its
   ceiling is max_in_flight x batch / latency = 2 x 500 / 20 ms = 50,000 contacts/s.

Also printed: peak RSS of this process, and a CPU reference (``bench/api.py``'s fixed Python
loop timed in the same run) to compare runs on a noisy box.

Usage::

    .venv/bin/python bench/delivery.py                                  # SQLite, ~8 minutes
    .venv/bin/python bench/delivery.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/pointbridge_bench_delivery
    .venv/bin/python bench/delivery.py --part latency --platform ecomail --seconds 10

A PostgreSQL URL names a database the script creates (dropped first if it exists) and drops,
once per platform and for the throughput part.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere: import the host from the repo
    sys.path.insert(0, str(ROOT))

from bench.api import REACHED, Shop, cpu_reference, database, server, wait_until_up  # noqa: E402
from bench.changes import BASE, Arrivals, offer, percentile  # noqa: E402
from bench.fake_servers import (  # noqa: E402
    fake_platform,
    fake_requests,
    fake_stats,
    make_fake,
    serve_in_child,
)

PLATFORMS = ("smartemailing", "ecomail", "dotmailer", "splio")
PLUGIN_FILE = ROOT / "tests" / "delivery" / "delivery_fakeesp.py"
# The key the e2e harness encrypts the integrations' secrets with; the server reads them.
SECRET_KEY = "tests-only-secret-key"
# Items one request carries where that is not the platform's declared batch: Splio PATCHes
# each contact it already has alone, Ecomail's tracker and Splio's interactions take one event
# a request.
CONTACTS_PER_REQUEST = {"splio": 1}
EVENTS_PER_REQUEST = {"ecomail": 1, "splio": 1}
# Platforms whose events spend a request budget of their own (Splio: 10/s off data/contacts).
EVENT_BUDGETS = {"splio": "off_contacts"}


# the ceiling -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Ceiling:
    changes_per_second: float
    formula: str
    events: bool


def ceiling(platform: str) -> Ceiling:
    """The changes/s the platform's documented request budgets allow, each change being one
    contact update and, where the platform takes events, one credit-changed event."""
    from pointbridge import Capability
    from pointbridge.plugins import PluginHost

    declared = PluginHost().platform(platform)
    assert declared.rate_limit is not None
    spends = [
        (
            declared.rate_limit,
            [(CONTACTS_PER_REQUEST.get(platform, declared.max_batch), "contact update")],
        )
    ]
    events = Capability.EVENTS in declared.capabilities
    if events:
        per_event = (EVENTS_PER_REQUEST.get(platform, declared.max_event_batch), "event")
        own = EVENT_BUDGETS.get(platform)
        if own is None:
            spends[0][1].append(per_event)
        else:
            spends.append((declared.rate_limits[own], [per_event]))
    bounds, texts = [], []
    for budget, items in spends:
        bounds.append(budget.calls / budget.per_seconds / sum(1 / n for n, _ in items))
        parts = " + ".join(f"1/{n:,} request per {what}" for n, what in items)
        texts.append(
            f"{budget.calls:,} requests/{budget.per_seconds:g} s / ({parts}) = {bounds[-1]:,.1f}"
        )
    formula = texts[0] if len(texts) == 1 else f"min({'; '.join(texts)})"
    return Ceiling(min(bounds), f"{formula} changes/s", events)


# one platform ----------------------------------------------------------------------------


def backlog(engine: Any) -> tuple[int, int, int]:
    """Outbox rows pending, dead letters, unfinished exports (the initial sync)."""
    from sqlalchemy import func, select

    from pointbridge.delivery.exports import UNFINISHED
    from pointbridge.storage.models import ExportJob, OutboxMessage, OutboxStatus
    from pointbridge.storage.models import outbox_status_is as status_is

    wheres = [
        (OutboxMessage, status_is(OutboxStatus.PENDING)),
        (OutboxMessage, status_is(OutboxStatus.DEAD)),
        (ExportJob, ExportJob.status.in_([s.value for s in UNFINISHED])),
    ]
    with engine.connect() as connection:
        pending, dead, exports = (
            int(connection.scalar(select(func.count()).select_from(model).where(where)) or 0)
            for model, where in wheres
        )
    return pending, dead, exports


def wait_drained(engine: Any, timeout: float) -> float | None:
    """Seconds until nothing is pending and no export unfinished; None after ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        pending, _dead, exports = backlog(engine)
        if not pending and not exports:
            return time.monotonic() - started
        time.sleep(0.1)
    return None


def prepare(folder: Path, url: str, platform: str, fake_url: str, customers: int) -> Any:
    """Customers at ``BASE`` points and the installed integration (which queues the initial
    sync); returns the API token and the customers' (id, e-mail)."""
    from sqlalchemy import select

    from pointbridge.storage.models import Customer
    from pointbridge.testing.e2e import Pointbridge

    with Pointbridge(folder, database_url=url) as pb:
        pb.seed_customers(customers, points=BASE, marketing_consent=True)
        settings = make_fake(platform, bench=False).settings
        pb.add_integration(platform, platform, {**settings, "api_url": fake_url})
        with pb.services.db.read() as session:
            rows = session.execute(select(Customer.id, Customer.email).order_by(Customer.id))
            return pb.token, [(row.id, row.email) for row in rows]


def latency_run(
    platform: str, database_url: str | None, folder: Path, args: argparse.Namespace
) -> dict[str, Any]:
    from sqlalchemy import create_engine

    bound = ceiling(platform)
    rate = min(args.rate, args.load * bound.changes_per_second)
    with (
        fake_platform(platform, args.latency, bench=False, record=True) as fake_url,
        database(database_url, folder) as url,
    ):
        token, customers = prepare(folder, url, platform, fake_url, args.customers)
        env = {
            "POINTBRIDGE_DATABASE_URL": url,
            "POINTBRIDGE_INSTANCE": str(folder / "instance"),
            "POINTBRIDGE_SECRET_KEY": SECRET_KEY,
            "POINTBRIDGE_PLUGINS": platform,
        }
        engine = create_engine(url)
        try:
            with server(env, args.workers, args.threads) as (base, _pid):
                wait_until_up(Shop(base, token, "", len(customers)))
                if wait_drained(engine, timeout=600) is None:
                    raise SystemExit(f"{platform}: the initial sync did not end in 10 minutes")
                time.sleep(fake_stats(fake_url)["quiet_in"])  # the sync's windows clear
                before = fake_stats(fake_url)
                load = offer(base, token, customers, rate, args.seconds)
                drained = wait_drained(engine, timeout=max(120.0, 4 * args.seconds))
                _pending, dead, _exports = backlog(engine)
                after = fake_stats(fake_url)
                arrivals = Arrivals.read(fake_requests(fake_url, since=load.started))
        finally:
            engine.dispose()
    contact_waits = [arrivals.contact_wait(*change) for change in load.changes]
    event_waits = arrivals.event_waits(load.changes)
    contacts = [w for w in contact_waits if w is not None]
    events = [w for w in event_waits if w is not None]
    return {
        "offered_per_second": round(rate, 1),
        "achieved_per_second": round(load.achieved, 1),
        "reached": load.achieved >= REACHED * rate,
        "changes": len(load.changes),
        "non_2xx": {s: c for s, c in load.statuses.items() if s >= 300},
        "contact_p50_ms": percentile(contacts, 0.5),
        "contact_p99_ms": percentile(contacts, 0.99),
        "contacts_missing": len(contact_waits) - len(contacts),
        "events": bound.events,
        "event_p50_ms": percentile(events, 0.5) if bound.events else None,
        "event_p99_ms": percentile(events, 0.99) if bound.events else None,
        "events_missing": len(event_waits) - len(events) if bound.events else 0,
        "drained_after_s": None if drained is None else round(drained, 1),
        "dead_letters": dead,
        "throttled_429": after["throttled"] - before["throttled"],
        "contact_requests": arrivals.requests["contact"],
        "event_requests": arrivals.requests["event"],
        "requests_per_change": round(
            (after["requests"] - before["requests"]) / max(1, len(load.changes)), 3
        ),
        "ceiling_per_second": round(bound.changes_per_second, 1),
        "formula": bound.formula,
    }


def latency_line(platform: str, f: dict[str, Any]) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:,.0f}"

    reached = "reached" if f["reached"] else "**NOT REACHED**"
    text = (
        f"{platform}: offered {f['offered_per_second']}/s, achieved "
        f"{f['achieved_per_second']}/s ({reached}), {f['changes']} changes; contact p50 "
        f"{ms(f['contact_p50_ms'])} ms, p99 {ms(f['contact_p99_ms'])} ms"
    )
    if f["events"]:
        text += f"; event p50 {ms(f['event_p50_ms'])} ms, p99 {ms(f['event_p99_ms'])} ms"
    problems = [
        f"{f['contacts_missing']} contact updates never arrived" * bool(f["contacts_missing"]),
        f"{f['events_missing']} events never arrived" * bool(f["events_missing"]),
        f"{f['dead_letters']} dead letters" * bool(f["dead_letters"]),
        f"non-2xx answers {f['non_2xx']}" * bool(f["non_2xx"]),
        "the outbox was not empty 2 minutes after the last change" * (f["drained_after_s"] is None),
    ]
    flags = "".join(f"; **{p}**" for p in problems if p)
    return (
        f"{text}; {f['requests_per_change']} requests a change ({f['contact_requests']} "
        f"contact pushes, {f['event_requests']} event requests), {f['throttled_429']} x 429"
        f"{flags}\n"
        f"    ceiling {f['ceiling_per_second']:,}/s: {f['formula']}"
    )


# throughput ------------------------------------------------------------------------------


def load_plugin() -> ModuleType:
    spec = importlib.util.spec_from_file_location("delivery_fakeesp", PLUGIN_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["delivery_fakeesp"] = module
    spec.loader.exec_module(module)
    return module


def fakeesp_app(latency: float) -> Any:
    plugin = load_plugin()
    return plugin.create_app(plugin.FakeEsp(latency=latency))


def throughput(database_url: str | None, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import select, update

    from pointbridge.plugins import PluginHost
    from pointbridge.storage.models import Customer, OutboxMessage
    from pointbridge.testing.e2e import Pointbridge

    plugins = PluginHost(discover=False)
    plugins.register(load_plugin(), "fakeesp")
    count, rates = args.contacts, []
    with (
        serve_in_child(fakeesp_app, args.latency) as url,
        database(database_url, folder) as db_url,
        Pointbridge(folder, database_url=db_url, host=plugins) as pb,
    ):
        settings = {"api_url": url, "api_key": "good", "account": "throughput", "timeout": 30}
        pb.add_integration("throughput", "fakeesp", settings)
        pb.seed_customers(count)
        outbox = OutboxMessage.__table__
        with pb.services.db.transaction() as session:
            ids = list(session.scalars(select(Customer.id)))
            for start in range(0, len(ids), 10_000):
                pb.services.outbox.contacts_changed(session, ids[start : start + 10_000])
        platform = pb.services.host.platform("fakeesp")
        for run in range(args.repeat):
            if run:  # the same rows again, so every run drains the same backlog
                for start in range(0, len(ids), 10_000):  # in steps: one big update cost 40 MB
                    with pb.services.db.transaction() as session:
                        session.execute(
                            update(outbox)
                            .where(outbox.c.customer_id.in_(ids[start : start + 10_000]))
                            .values(status="pending", attempts=0, delivered_at=None)
                        )
            if pb.services.db.is_postgres:
                # As autovacuum would shortly after a bulk insert: without statistics the
                # planner takes the outbox for empty and scans it all for every claim.
                with pb.services.db.engine.begin() as connection:
                    connection.exec_driver_sql("ANALYZE")
            worker = pb.services.worker()
            started = time.perf_counter()
            result = worker.drain()
            elapsed = time.perf_counter() - started
            assert result.delivered == count and pb.pending() == 0, result
            rates.append(count / elapsed)
    bound = platform.max_in_flight * platform.max_batch / args.latency
    rate = statistics.median(rates)
    return {
        "contacts": count,
        "runs_per_second": [round(r) for r in rates],
        "contacts_per_second": round(rate),
        "ceiling_per_second": round(bound),
        "formula": f"{platform.max_in_flight} in flight x {platform.max_batch} / "
        f"{args.latency * 1000:g} ms = {bound:,.0f}/s",
        "of_ceiling": round(rate / bound, 3),
    }


def throughput_line(f: dict[str, Any]) -> str:
    return (
        f"throughput: {f['contacts']:,} contacts, median of "
        f"{', '.join(f'{r:,}' for r in f['runs_per_second'])} = {f['contacts_per_second']:,}/s; "
        f"ceiling {f['formula']}: {f['of_ceiling']:.2f} of it"
    )


# main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("latency", "throughput"), action="append")
    parser.add_argument("--platform", choices=PLATFORMS, action="append")
    parser.add_argument("--rate", type=float, default=200.0, help="changes/s offered at most")
    parser.add_argument("--load", type=float, default=0.8, help="of a platform's ceiling")
    parser.add_argument("--seconds", type=float, default=20.0, help="of changes at the rate")
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="pointbridge run --workers")
    parser.add_argument("--threads", type=int, default=8, help="pointbridge run --threads")
    parser.add_argument("--contacts", type=int, default=100_000, help="throughput backlog")
    parser.add_argument("--repeat", type=int, default=3, help="throughput runs (median)")
    parser.add_argument("--latency", type=float, default=0.020, help="seconds per request")
    parser.add_argument("--database-url", default=None, help="default: a SQLite file")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = parser.parse_args(argv)
    os.environ.setdefault("POINTBRIDGE_SECRET_KEY", SECRET_KEY)
    from pointbridge.delivery.background import tune_garbage_collector

    tune_garbage_collector()  # as `pointbridge run` and `pointbridge worker` do
    parts = args.part or ["latency", "throughput"]
    reference = cpu_reference()
    # First: a run stopped halfway has still said how busy the box was.
    print(
        f"CPU reference {reference:.2f} s (bench/api.py's fixed Python loop, timed in this run)",
        flush=True,
    )
    figures: dict[str, Any] = {
        "database": "postgresql" if args.database_url else "sqlite",
        "cpu_reference_seconds": round(reference, 3),
    }
    with tempfile.TemporaryDirectory(prefix="pointbridge-bench-delivery-") as tmp:
        if "latency" in parts:
            figures["latency"] = {}
            for platform in args.platform or PLATFORMS:
                folder = Path(tmp) / platform
                folder.mkdir()
                found = latency_run(platform, args.database_url, folder, args)
                figures["latency"][platform] = found
                print(latency_line(platform, found), flush=True)
        if "throughput" in parts:
            folder = Path(tmp) / "throughput"
            folder.mkdir()
            figures["throughput"] = throughput(args.database_url, folder, args)
            print(throughput_line(figures["throughput"]), flush=True)
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(f"peak RSS {figures['peak_rss_mb']} MB")
    if args.json:
        print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
