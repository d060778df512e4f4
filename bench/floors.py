"""Benchmark: exports against each platform's floor, the rate its documented limits allow.

Per platform (SmartEmailing, Ecomail, Dotdigital, Splio), ``--customers`` customers (default
100,000; ``--full`` 1,000,000; ``--quick`` 10,000) are exported through the real plugin
and ``pointbridge.delivery.exports.Exporter`` (what ``pointbridge export NAME`` runs) to the
plugin's own fake in bench mode (``bench=True``: a bulk call is answered from the addresses
in its body, without per-item checks or storage). The fake runs in a process of its own, served by
waitress, behind a front that answers every request 20 ms (``--latency``) after it arrived
and enforces the platform's documented limit (its ``Platform.rate_limit``, and Splio's second
budget) with the platform's own 429: the fake's CPU does not count as pointbridge's, and the
figure measures pointbridge. Each export runs in a fresh child process, so its CPU time and
peak RSS are the export's alone.

Printed per platform: contacts/s, the floor and its formula, which limit binds, the ratio,
429s the fake answered, the export process's peak RSS and CPU µs per contact; once, a CPU
reference (``bench/api.py``'s fixed pure-Python loop) to compare runs on a noisy box. The
floor is min(rate bound, latency bound):

- rate bound = max_batch x the limit's calls/s / limited requests per page;
- latency bound = max_in_flight x max_batch / seconds one page spends at the platform
  (its round trips x latency, plus the plugin's own waits: Dotdigital's import polls).

pointbridge paces at 95 % of a declared limit (``ratelimit.SAFETY``), so a rate-bound export
peaks at a ratio of 0.95.

Usage::

    .venv/bin/python bench/floors.py                        # SQLite, 100,000 customers
    .venv/bin/python bench/floors.py --quick --platform ecomail
    .venv/bin/python bench/floors.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/pointbridge_bench_floors

A PostgreSQL URL names a database the script creates (dropped first if it exists) and drops.
Writes ``bench/results/floors-<sqlite|postgresql>.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere: import the host from the repo
    sys.path.insert(0, str(ROOT))

from bench.api import cpu_reference, database  # noqa: E402
from bench.fake_servers import Fake, fake_platform, fake_stats, make_fake  # noqa: E402

PLATFORMS = ("smartemailing", "ecomail", "dotmailer", "splio")
# The key the e2e harness encrypts the integrations' secrets with; the export process reads them.
SECRET_KEY = "tests-only-secret-key"
RESULTS = ROOT / "bench" / "results"


def floor(platform: str, fake: Fake, latency: float) -> dict[str, Any]:
    """The contacts/s the platform's limits allow, the formula, and which limit binds."""
    from pointbridge.plugins import PluginHost

    declared = PluginHost().platform(platform)
    assert declared.rate_limit is not None
    batch, in_flight = declared.max_batch, declared.max_in_flight
    calls_per_second = declared.rate_limit.per_second / fake.limited_per_page
    by_rate = batch * calls_per_second
    page_seconds = fake.requests_per_page * latency + fake.waits_per_page
    by_latency = in_flight * batch / page_seconds
    rate_text = (
        f"{batch:,} x {declared.rate_limit.calls}/{declared.rate_limit.per_seconds:g} s"
        f" = {by_rate:,.0f}/s"
    )
    page_text = f"{fake.requests_per_page} x {latency * 1000:g} ms" + (
        f" + {fake.waits_per_page * 1000:g} ms polls" if fake.waits_per_page else ""
    )
    latency_text = f"{in_flight} in flight x {batch:,} / ({page_text}) = {by_latency:,.0f}/s"
    binds = "rate limit" if by_rate <= by_latency else "latency x max_in_flight"
    return {
        "floor_per_second": round(min(by_rate, by_latency)),
        "binds": binds,
        "formula": f"min(rate: {rate_text}; latency: {latency_text})",
        "max_batch": batch,
        "max_in_flight": in_flight,
    }


# the export's process --------------------------------------------------------------------


def _settings(folder: Path, database_url: str) -> Any:
    from pointbridge.settings import Settings

    return Settings(
        instance_path=folder / "instance", database_url=database_url, secret_key=SECRET_KEY
    )


def _export(folder: Path, database_url: str, integration: str, results: Any) -> None:
    """One export from start to end in this (fresh) process: its wall time, CPU, peak RSS."""
    from pointbridge.delivery.background import tune_garbage_collector
    from pointbridge.delivery.exports import Exporter, queue_export
    from pointbridge.services import Services

    tune_garbage_collector()  # as `pointbridge run`, `worker` and `export` processes do
    services = Services.build(_settings(folder, database_url))
    with services.db.read() as session:
        integration_id = services.integrations.get(session, integration).id
    job = queue_export(services.db, integration_id)
    exporter = Exporter(services.db, services.integrations, services.outbox, owner="bench")
    cpu, wall = time.process_time(), time.perf_counter()
    progress = exporter.run(job.id)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    results.put(
        {
            "status": progress.status,
            "done": progress.done,
            "failed": progress.failed,
            "deferred": progress.deferred,
            "seconds": wall,
            "cpu_seconds": cpu,
            "peak_rss_mb": peak_rss_mb(),
        }
    )


def peak_rss_mb() -> float:
    """This process's peak RSS. Not ``ru_maxrss``: Linux carries that across the exec of a
    spawned child, so a child would report its parent's peak."""
    status = Path("/proc/self/status").read_text()
    kilobytes = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))
    return int(kilobytes) / 1024


def export_in_child(folder: Path, database_url: str, integration: str) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=_export, args=(folder, database_url, integration, results))
    process.start()
    try:
        return results.get()
    finally:
        process.join(60)


# one database ----------------------------------------------------------------------------


def add_history(db: Any, entries: int) -> None:
    """Give every customer ``entries`` spent credits: a credit, its lot used up, and the debit
    that spent it (the balance stays). A shop's customers have such a past; a snapshot reads
    it (lifetime points, the next expiry among lots with points left), and an export must not
    slow down with it."""
    from sqlalchemy import literal, select

    from pointbridge.storage.models import Customer, LedgerEntry, PointLot

    ledger, lots, customer = LedgerEntry.__table__, PointLot.__table__, Customer.__table__
    now = literal(datetime.now(UTC), ledger.c.created_at.type)
    columns = ["customer_id", "points", "reason", "reference", "created_at"]
    with db.transaction() as session:
        for number in range(entries):
            for points, reference in ((10, f"history-{number}"), (-10, f"history-{number}-spent")):
                session.execute(
                    ledger.insert().from_select(
                        columns,
                        select(
                            customer.c.id,
                            literal(points, ledger.c.points.type),
                            literal("order"),
                            literal(reference),
                            now,
                        ),
                    )
                )
            session.execute(
                lots.insert().from_select(
                    ["customer_id", "entry_id", "points", "remaining", "expires_on"],
                    select(
                        ledger.c.customer_id,
                        ledger.c.id,
                        ledger.c.points,
                        literal(0, lots.c.remaining.type),
                        literal(date(2027, 1, 1) + timedelta(days=number), lots.c.expires_on.type),
                    ).where(ledger.c.reference == f"history-{number}"),
                )
            )


def run(
    database_url: str | None,
    customers: int,
    platforms: Iterable[str],
    latency: float,
    history: int = 0,
) -> dict[str, Any]:
    from pointbridge.testing.e2e import Pointbridge

    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, database(database_url, Path(tmp)) as url:
        folder = Path(tmp)
        with Pointbridge(folder, database_url=url) as pb:
            # Customers who agreed to marketing e-mail: Dotdigital creates one without consent
            # as unsubscribed, which takes a lookup per address it has not seen (README).
            pb.seed_customers(customers, marketing_consent=True)
            add_history(pb.services.db, history)
            if pb.services.db.is_postgres:
                # As autovacuum would after the load: statistics, and the visibility map
                # without which an index-only scan (the history's sums) reads the rows too.
                engine = pb.services.db.engine.execution_options(isolation_level="AUTOCOMMIT")
                with engine.connect() as connection:
                    connection.exec_driver_sql("VACUUM ANALYZE")
            for platform in platforms:
                fake = make_fake(platform)
                with fake_platform(platform, latency) as fake_url:
                    pb.add_integration(platform, platform, {**fake.settings, "api_url": fake_url})
                    before = fake_stats(fake_url)
                    # The install's requests are this process's; the export's process has a
                    # pacer of its own, so it starts with the platform's windows clear.
                    time.sleep(before["quiet_in"])
                    export = export_in_child(folder, url, platform)
                    after = fake_stats(fake_url)
                rate = export["done"] / export["seconds"]
                bound = floor(platform, fake, latency)
                figures[platform] = {
                    "customers": customers,
                    **export,
                    "contacts_per_second": round(rate),
                    **bound,
                    "ratio": round(rate / bound["floor_per_second"], 3),
                    "throttled_429": after["throttled"] - before["throttled"],
                    "requests": after["requests"] - before["requests"],
                    "arrived": after["addresses"],
                    "cpu_us_per_contact": round(1e6 * export["cpu_seconds"] / export["done"], 1),
                    # What one core to itself would allow, however busy the box was.
                    "cpu_bound_per_second": round(export["done"] / export["cpu_seconds"]),
                }
                print(line(platform, figures[platform]), flush=True)
    return figures


def line(platform: str, f: dict[str, Any]) -> str:
    return (
        f"{platform}: {f['done']:,} in {f['seconds']:.1f} s = {f['contacts_per_second']:,}/s, "
        f"floor {f['floor_per_second']:,}/s ({f['binds']}), ratio {f['ratio']:.2f}, "
        f"{f['throttled_429']} x 429, {f['cpu_us_per_contact']} µs CPU/contact "
        f"(one core: {f['cpu_bound_per_second']:,}/s), "
        f"peak RSS {f['peak_rss_mb']:.0f} MB, {f['arrived']:,} arrived"
    )


def table(figures: dict[str, Any]) -> str:
    rows = [
        "| platform | contacts/s | floor/s (binds) | ratio | 429s | CPU µs/contact (one core) "
        "| peak RSS |",
        "|---|---|---|---|---|---|---|",
    ]
    for platform, f in figures.items():
        rows.append(
            f"| {platform} | {f['contacts_per_second']:,} | {f['floor_per_second']:,} "
            f"({f['binds']}) | {f['ratio']:.2f} | {f['throttled_429']} | "
            f"{f['cpu_us_per_contact']} ({f['cpu_bound_per_second']:,}/s) | "
            f"{f['peak_rss_mb']:.0f} MB |"
        )
    rows.append("")
    rows.extend(f"- {platform}: {f['formula']}" for platform, f in figures.items())
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--customers", type=int, default=100_000)
    size.add_argument("--full", action="store_const", dest="customers", const=1_000_000)
    size.add_argument("--quick", action="store_const", dest="customers", const=10_000)
    parser.add_argument("--platform", choices=PLATFORMS, action="append")
    parser.add_argument("--latency", type=float, default=0.020, help="seconds per request")
    parser.add_argument("--database-url", default=None, help="default: a SQLite file")
    parser.add_argument("--output", type=Path, default=None, help="the JSON file to write")
    parser.add_argument(
        "--history", type=int, default=0, help="spent credits each customer has had (default 0)"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("POINTBRIDGE_SECRET_KEY", SECRET_KEY)

    reference = cpu_reference()
    figures = run(
        args.database_url, args.customers, args.platform or PLATFORMS, args.latency, args.history
    )
    kind = "postgresql" if args.database_url else "sqlite"
    result = {
        "database": kind,
        "latency_seconds": args.latency,
        "history_entries": args.history,
        "cpu_reference_seconds": round(reference, 3),
        "platforms": figures,
    }
    output = args.output or RESULTS / f"floors-{kind}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(table(figures))
    print(f"\nCPU reference: {reference:.2f} s ({kind}); JSON in {output}")
    return result


if __name__ == "__main__":
    main()
