"""Benchmark: how fast the delivery worker moves contacts, and how soon a change arrives.

Against the fake HTTP platform of the delivery tests (``tests/delivery/delivery_fakeesp.py``,
run in a process of its own so its CPU does not count against the host's), answering every
call after ``--latency`` (default 20 ms):

1. *Throughput*: ``--contacts`` customers (default 100,000) each with a pending contact update,
   drained by one worker at the plugin's batch size (500), ``--repeat`` times (default 3; the
   median is the figure: this shared 2-CPU box's speed varies by a third from run to run).
   The fake plugin declares ``max_in_flight=2``. The figure is compared with
   batch / latency (500 / 0.020 s = 25,000 contacts/s), what one call at a time would allow.
   Target: within 10 %.
2. *Latency*: credits made through the loyalty service by a thread at ``--rate`` changes/s
   (default 200) for ``--seconds`` (default 10), the embedded worker woken on commit
   (``core.runner.start_background`` with ``services.outbox.wakeup``, as ``pointbridge run``
   does). Commit-to-arrival latency per change (the first push at the platform carrying that
   change or a later one): p50 and p99. Target: p99 < 2 s.
3. Peak RSS of the benchmark process.

Usage::

    .venv/bin/python bench/delivery.py
    .venv/bin/python bench/delivery.py --contacts 20000 --seconds 5           # quicker
    .venv/bin/python bench/delivery.py --database-url postgresql+psycopg://...  # on PostgreSQL

Runs in about a minute with the defaults.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing
import os
import random
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere: import the host from the repo
    sys.path.insert(0, str(ROOT))

PLUGIN_FILE = ROOT / "tests" / "delivery" / "delivery_fakeesp.py"


def load_plugin() -> ModuleType:
    spec = importlib.util.spec_from_file_location("delivery_fakeesp", PLUGIN_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["delivery_fakeesp"] = module
    spec.loader.exec_module(module)
    return module


def _serve_fake(latency: float, urls: Any, stop: Any) -> None:
    from pointbridge.testing import FakeServer

    plugin = load_plugin()
    with FakeServer(plugin.create_app(plugin.FakeEsp(latency=latency))) as server:
        urls.put(server.url)
        stop.wait()


@contextmanager
def fake_platform(latency: float) -> Iterator[str]:
    """The fake platform in a child process; yields its URL."""
    context = multiprocessing.get_context("spawn")
    urls = context.Queue()
    stop = context.Event()
    process = context.Process(target=_serve_fake, args=(latency, urls, stop), daemon=True)
    process.start()
    try:
        yield urls.get(timeout=60)
    finally:
        stop.set()
        process.join(10)


def state(url: str, account: str, *, arrivals: bool = True) -> dict[str, Any]:
    """The fake platform's record of one account: how many contacts it holds and, with
    ``arrivals``, every push and event in the order they arrived."""
    import requests

    query = "" if arrivals else "?arrivals=0"
    return requests.get(f"{url}/_state/{account}{query}", timeout=60).json()


def host(tmp: Path, database_url: str | None) -> Any:
    from pointbridge.plugins import PluginHost
    from pointbridge.testing.e2e import Pointbridge

    if database_url:
        from pointbridge.storage.migrate import upgrade
        from pointbridge.testing.databases import truncate_all

        upgrade(database_url)  # a fresh database has no tables to empty yet
        truncate_all(database_url)
    plugins = PluginHost(discover=False)
    plugins.register(load_plugin(), "fakeesp")
    return Pointbridge(tmp, database_url=database_url, host=plugins)


def add_integration(pb: Any, name: str, url: str) -> None:
    settings = {"api_url": url, "api_key": "good", "account": name, "timeout": 30}
    pb.add_integration(name, "fakeesp", settings)


def bare_call_seconds(url: str, batch: int, calls: int = 20) -> float:
    """One push of ``batch`` contacts with a ready-made body, back to back: the round trip
    of this fake and HTTP stack when the host does nothing else (a ceiling below the ideal
    batch/latency, since sending and parsing 200 KB takes a few ms of its own)."""
    import requests

    contact = {
        "name": "First",
        "credit": "10",
        "credit_num": 10,
        "pin": "",
        "registered": "1",
        "next_expiration_date": "",
        "next_expiration_value": "0",
        "next_expiration_value_num": 0,
        "last_change_date": "2025-01-01 00:00:00",
        "last_change_value": "10",
        "referral_code": "SEED00000001",
        "referral_link": "http://127.0.0.1:5000/r/SEED00000001",
        "tier_id": "",
        "tier_name": "",
        "missions": 0,
        "rewards": 0,
        "referrals": 0,
    }
    body = json.dumps({"contacts": [{"email": f"b{n}@x.cz", **contact} for n in range(batch)]})
    headers = {"Authorization": "Bearer good", "Content-Type": "application/json"}
    with requests.Session() as session:
        session.put(f"{url}/bare/contacts", data=body, headers=headers, timeout=30)
        started = time.perf_counter()
        for _ in range(calls):
            session.put(f"{url}/bare/contacts", data=body, headers=headers, timeout=30)
        return (time.perf_counter() - started) / calls


def throughput(
    url: str, count: int, latency: float, database_url: str | None, repeat: int
) -> dict[str, Any]:
    from sqlalchemy import select, update

    from pointbridge.storage.models import Customer, OutboxMessage

    rates = []
    with tempfile.TemporaryDirectory() as tmp, host(Path(tmp), database_url) as pb:
        add_integration(pb, "throughput", url)
        pb.seed_customers(count)
        with pb.services.db.transaction() as session:
            ids = list(session.scalars(select(Customer.id)))
            for start in range(0, len(ids), 10_000):
                pb.services.outbox.contacts_changed(session, ids[start : start + 10_000])
        batch = pb.services.host.platform("fakeesp").max_batch
        for run in range(repeat):
            if run:  # the same rows again, so every run drains the same backlog
                outbox = OutboxMessage.__table__
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
        received = state(url, "throughput", arrivals=False)["contacts"]
        assert received == count, f"{received} of {count} contacts arrived"
    ceiling = batch / latency
    bare = batch / bare_call_seconds(url, batch)
    rate = statistics.median(rates)
    return {
        "contacts": count,
        "batch": batch,
        "runs_per_second": [round(r) for r in rates],
        "contacts_per_second": round(rate),
        "ceiling_per_second": round(ceiling),
        "of_ceiling": round(rate / ceiling, 3),
        "bare_calls_per_second": round(bare),
        "of_bare_calls": round(rate / bare, 3),
    }


def latency(url: str, rate: float, seconds: float, database_url: str | None) -> dict[str, Any]:
    from pointbridge.delivery.background import start_background

    with tempfile.TemporaryDirectory() as tmp, host(Path(tmp), database_url) as pb:
        add_integration(pb, "latency", url)
        services = pb.services
        with services.db.transaction() as session:
            ids = [
                services.loyalty.create_customer(session, {"email": f"l{n}@example.com"}).id
                for n in range(1000)
            ]
        pb.deliver()
        stop = threading.Event()
        threads = start_background(services, stop, wakeup=services.outbox.wakeup)
        commits: list[tuple[str, int, float]] = []  # email, balance after, commit time
        writers = 8  # a commit may take longer than 1/rate (PostgreSQL's fsync); spread them

        def write(seed: int) -> None:
            rng = random.Random(seed)
            interval = writers / rate
            next_at = time.perf_counter() + interval * seed / writers
            for _ in range(int(rate * seconds / writers)):
                time.sleep(max(0.0, next_at - time.perf_counter()))
                next_at += interval
                customer_id = rng.choice(ids)
                with services.db.transaction() as session:
                    customer = services.loyalty.get(session, customer_id)
                    services.loyalty.post_transaction(session, customer, 1, "order")
                    email, balance = customer.email, customer.balance
                commits.append((email, balance, time.time()))

        threads_of_writers = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
        started = time.perf_counter()
        for writer in threads_of_writers:
            writer.start()
        for writer in threads_of_writers:
            writer.join()
        achieved = len(commits) / (time.perf_counter() - started)
        deadline = time.monotonic() + 60
        while pb.pending() and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        services.outbox.wake()
        for thread in threads:
            thread.join(10)
        pushes: dict[str, list[tuple[float, int]]] = {}
        for kind, email, at, points in state(url, "latency")["arrivals"]:
            if kind == "contact":
                pushes.setdefault(email, []).append((at, points))
        waits = []
        for email, balance, committed in commits:
            arrived = min(at for at, points in pushes.get(email, []) if points >= balance)
            waits.append(arrived - committed)
    waits.sort()
    return {
        "changes": len(commits),
        "changes_per_second": round(achieved, 1),
        "p50_ms": round(1000 * statistics.median(waits), 1),
        "p99_ms": round(1000 * waits[int(0.99 * (len(waits) - 1))], 1),
        "max_ms": round(1000 * waits[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="throughput runs (median)")
    parser.add_argument("--latency", type=float, default=0.020, help="seconds per call")
    parser.add_argument("--rate", type=float, default=200.0, help="changes per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="of changes at --rate")
    parser.add_argument("--database-url", default=None, help="default: a SQLite file")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    os.environ.setdefault("POINTBRIDGE_SECRET_KEY", "bench-only-secret-key")
    from pointbridge.delivery.background import tune_garbage_collector

    tune_garbage_collector()  # as `pointbridge run` and `pointbridge worker` do

    with fake_platform(args.latency) as url:
        sent = throughput(url, args.contacts, args.latency, args.database_url, args.repeat)
        waited = latency(url, args.rate, args.seconds, args.database_url)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures = {"throughput": sent, "latency": waited, "peak_rss_mb": round(peak_mb, 1)}
    if args.json:
        print(json.dumps(figures))
        return
    print(
        f"throughput: {sent['contacts']:,} contacts, median of "
        f"{', '.join(f'{r:,}' for r in sent['runs_per_second'])} = "
        f"{sent['contacts_per_second']:,}/s; ceiling at batch {sent['batch']} and "
        f"{args.latency * 1000:g} ms latency {sent['ceiling_per_second']:,}/s "
        f"({100 * sent['of_ceiling']:.1f} % of it; target >= 90 %)"
    )
    print(
        f"            the same calls with ready-made bodies, back to back: "
        f"{sent['bare_calls_per_second']:,}/s (the host reaches "
        f"{100 * sent['of_bare_calls']:.1f} % of that)"
    )
    print(
        f"latency: {waited['changes']} changes at {waited['changes_per_second']}/s, "
        f"commit -> platform p50 {waited['p50_ms']} ms, p99 {waited['p99_ms']} ms "
        f"(target < 2000), max {waited['max_ms']} ms"
    )
    print(f"peak RSS: {figures['peak_rss_mb']} MB")


if __name__ == "__main__":
    main()
