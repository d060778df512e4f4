"""Benchmark: the nightly points-expiry run over a million customers, on SQLite or PostgreSQL.

What it does, per ``--customers`` size (default 1,000,000):

1. Builds a fresh database (SQLite, or with ``--database-url`` a PostgreSQL database the script
   creates, dropped first if it exists, and drops) with the Alembic migration
   (``core.migrate.upgrade``), then bulk-loads customers, their credits (ledger entries) and
   ``--lots`` point lots each (default 3, so 3,000,000 lots for 1,000,000 customers): a few
   big transactions through the ``sqlite3`` module, or ``COPY`` then ``VACUUM ANALYZE``.
   Open lots expire evenly over ``--spread-days`` (default 30) days from the run day, so about
   1/30 of the lots fall due each night; 15 % of the lots are already spent and 15 % half spent
   (one debit entry per customer that spent). One active integration sends expiry notices
   ``--notice-days`` (default 7) days ahead.
2. In a fresh child process (so its peak RSS is the run's, not the build's), times
   ``Expiry(db, outbox).run_day(day)`` for two consecutive nights:

   - *first night*: expires the lots due that day, and, as nothing was ever notified, queues
     the notices of the whole 7-day window (7/30 of the lots): the worst night, once;
   - *steady night* (the day after): expires that day's lots and notifies the one date that
     entered the window, the other six dates being de-duplicated against the outbox: every
     night from then on.

   Each night's counts are checked against what the build generated; the child reports each
   night's run time and peak RSS (Linux ``VmHWM``, reset before each night), and the RSS
   before the first night (imports, engine, SQLite) as the baseline.

Target: a night under 60 s for 1,000,000 customers (60 s x N / 1,000,000 for another size;
the ratio printed is the night's time over that budget), and peak memory flat as the customer
count grows (the job pages through customers; nothing scales with their number in memory).
Also printed: a CPU reference figure (a fixed pure-Python loop timed in the same run, see
``bench/api.py``), so runs on a busy or another box can be compared.

Usage::

    .venv/bin/python bench/expiry.py                         # 1,000,000 customers on SQLite
    .venv/bin/python bench/expiry.py --customers 100000      # quicker
    .venv/bin/python bench/expiry.py --customers 250000 --customers 1000000   # memory flat?
    .venv/bin/python bench/expiry.py \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/pointbridge_bench_expiry
    .venv/bin/python bench/expiry.py --customers 1000000 --keep --workdir /tmp/expiry-bench

Building the 1,000,000-customer database takes one to three minutes, and on SQLite ~1 GB of
disk in ``--workdir`` (default: a temporary directory, removed afterwards unless ``--keep``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere: import the host from the repo
    sys.path.insert(0, str(ROOT))

from bench.api import cpu_reference, database  # noqa: E402

DAY = date(2025, 3, 10)
CREATED_AT = "2025-01-01 08:00:00.000000"  # SQLAlchemy's SQLite DATETIME storage format
CHUNK = 200_000
TARGET_SECONDS = 60.0  # a night, issue 14
TARGET_CUSTOMERS = 1_000_000


@dataclass
class Night:
    """What a night's run must do, computed while generating the data."""

    day: str
    customers_expired: int = 0
    points_expired: int = 0
    notices: int = 0


@dataclass
class Expected:
    customers: int
    lots: int
    ledger_entries: int
    nights: list[Night] = field(default_factory=list)


# building ---------------------------------------------------------------------------------


CUSTOMER_COLUMNS = (
    "id, email, external_id, registered, referral_code, missions, rewards, referrals, balance,"
    " last_change_at, last_change_points, created_at, updated_at"
)
LEDGER_COLUMNS = "id, customer_id, points, reason, reference, expires_on, created_at"
LOT_COLUMNS = "id, customer_id, entry_id, points, remaining, expires_on"
INTEGRATION = (
    "INSERT INTO integration (id, name, platform, settings, data, field_prefix,"
    " expiry_notice_days, list_rewards, status, webhook_token_hash, webhook_token_encrypted,"
    " webhook_secret, created_at, updated_at) VALUES (1, 'shop', 'jsonl', '{{}}', '{{}}',"
    " 'ellity_', {p}, '{{}}', 'active', 'bench-token-hash', {p}, {p}, {p}, {p})"
)
Rows = list[tuple[Any, ...]]


class SqliteLoader:
    """Bulk load through ``sqlite3``: a thrown-away database needs no journal and no fsync."""

    def __init__(self, url: str) -> None:
        self.connection = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        self.connection.execute("PRAGMA journal_mode=OFF")
        self.connection.execute("PRAGMA synchronous=OFF")
        self.connection.execute("PRAGMA cache_size=-262144")

    def load(self, customers: Rows, ledger: Rows, lots: Rows) -> None:
        self.connection.execute("BEGIN")
        for table, columns, rows in _tables(customers, ledger, lots):
            marks = ", ".join("?" * (columns.count(",") + 1))
            self.connection.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)
        self.connection.execute("COMMIT")

    def finish(self, notice_days: int) -> None:
        self.connection.execute(
            INTEGRATION.format(p="?"), (notice_days, b"\0", b"\0", CREATED_AT, CREATED_AT)
        )
        self.connection.execute("ANALYZE")
        self.connection.close()


class PostgresLoader:
    """Bulk load with ``COPY``; then the sequences move past the loaded ids, and ``VACUUM
    ANALYZE`` gives the planner statistics and the visibility map, as autovacuum would."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.connection = psycopg.connect(
            url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
        )

    def load(self, customers: Rows, ledger: Rows, lots: Rows) -> None:
        with self.connection.transaction():
            for table, columns, rows in _tables(customers, ledger, lots):
                with self.connection.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)

    def finish(self, notice_days: int) -> None:
        self.connection.execute(
            INTEGRATION.format(p="%s"), (notice_days, b"\0", b"\0", CREATED_AT, CREATED_AT)
        )
        for table in ("customer", "ledger_entry", "point_lot", "integration"):
            self.connection.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"
            )
        self.connection.execute("VACUUM ANALYZE")
        self.connection.close()


def _tables(customers: Rows, ledger: Rows, lots: Rows) -> list[tuple[str, str, Rows]]:
    return [
        ("customer", CUSTOMER_COLUMNS, customers),
        ("ledger_entry", LEDGER_COLUMNS, ledger),
        ("point_lot", LOT_COLUMNS, lots),
    ]


def build(url: str, customers: int, lots: int, spread: int, notice_days: int) -> Expected:
    from pointbridge.storage.migrate import upgrade

    upgrade(url)
    loader = PostgresLoader(url) if url.startswith("postgresql") else SqliteLoader(url)
    rng = random.Random(20250310)
    first, second = DAY, DAY + timedelta(days=1)
    # Per night: customers with points due, points due, and (customer, date) pairs to notify.
    due_customers, due_points, notices = [0, 0], [0, 0], [0, 0]

    customer_rows: Rows = []
    ledger_rows: Rows = []
    lot_rows: Rows = []
    entry_id = 0
    lot_id = 0
    days = [(DAY + timedelta(days=n)).isoformat() for n in range(spread)]

    def flush() -> None:
        loader.load(customer_rows, ledger_rows, lot_rows)
        customer_rows.clear()
        ledger_rows.clear()
        lot_rows.clear()

    for customer_id in range(1, customers + 1):
        balance = 0
        spent = 0
        due = [0, 0]
        notify: list[set[int]] = [set(), set()]
        for n in range(lots):
            points = rng.randint(10, 500)
            offset = rng.randrange(spread)
            state = rng.random()
            remaining = 0 if state < 0.15 else points // 2 if state < 0.30 else points
            entry_id += 1
            lot_id += 1
            ledger_rows.append(
                (entry_id, customer_id, points, "order", f"order-{n}", days[offset], CREATED_AT)
            )
            lot_rows.append((lot_id, customer_id, entry_id, points, remaining, days[offset]))
            balance += remaining
            spent += points - remaining
            if remaining:
                for night in (0, 1):
                    # Night 0 runs on DAY, night 1 on DAY + 1 (after night 0 expired its lots).
                    if offset == night:
                        due[night] += remaining
                    # The second night's other dates were notified the night before.
                    elif night < offset <= notice_days + night and (
                        night == 0 or offset > notice_days
                    ):
                        notify[night].add(offset)
        for night in (0, 1):
            due_customers[night] += bool(due[night])
            due_points[night] += due[night]
            notices[night] += len(notify[night])
        if spent:
            entry_id += 1
            ledger_rows.append((entry_id, customer_id, -spent, "reward", None, None, CREATED_AT))
        customer_rows.append(
            (
                customer_id,
                f"customer{customer_id}@example.com",
                None,
                customer_id % 3 != 0,
                f"R{customer_id:010d}",
                0,
                0,
                0,
                balance,
                CREATED_AT if spent else None,
                -spent if spent else None,
                CREATED_AT,
                CREATED_AT,
            )
        )
        if len(lot_rows) >= CHUNK:
            flush()
    flush()
    loader.finish(notice_days)

    expected = Expected(customers=customers, lots=lot_id, ledger_entries=entry_id)
    for night, day in enumerate((first, second)):
        expected.nights.append(
            Night(
                day.isoformat(),
                customers_expired=due_customers[night],
                points_expired=due_points[night],
                notices=notices[night],
            )
        )
    return expected


# measuring (in a child process) -----------------------------------------------------------


def _status_mb(key: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def rss_mb() -> float:
    return _status_mb("VmRSS") or peak_rss_mb()


def peak_rss_mb() -> float:
    """Peak RSS since the last ``reset_peak_rss`` (Linux), else since the process started."""
    return _status_mb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> None:
    # Writing 5 to clear_refs resets VmHWM (Linux >= 4.0), so each night gets its own peak.
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def measure(url: str, nights: list[str]) -> dict[str, Any]:
    from pointbridge.delivery.outbox import Outbox
    from pointbridge.loyalty.expiry import Expiry
    from pointbridge.loyalty.service import Loyalty
    from pointbridge.plugins import PluginHost
    from pointbridge.settings import Settings
    from pointbridge.storage.db import Database

    db = Database(url)
    # No plugin loaded: the outbox keeps events for a platform it does not know (the worker
    # that has the plugin delivers them), which is what a scheduler-only process does.
    outbox = Outbox(PluginHost(discover=False))
    expiry = Expiry(db, Loyalty(Settings(instance_path=Path.cwd(), database_url=url), outbox))
    with db.transaction():
        pass  # connect once, so the baseline includes the engine and the driver
    result: dict[str, Any] = {"baseline_rss_mb": round(rss_mb(), 1), "nights": []}
    # Each half of a night timed on its own, to say which one a change (or the load) moved.
    halves = {"expiry": 0.0, "notices": 0.0}

    def timed(name: str, run: Callable[..., None]) -> Callable[..., None]:
        def timed_run(*args: Any) -> None:
            started = time.perf_counter()
            run(*args)
            halves[name] = time.perf_counter() - started

        return timed_run

    expiry._expire = timed("expiry", expiry._expire)  # type: ignore[method-assign]
    expiry._notify = timed("notices", expiry._notify)  # type: ignore[method-assign]
    for day in nights:
        reset_peak_rss()
        started = time.perf_counter()
        report = expiry.run_day(date.fromisoformat(day))
        seconds = time.perf_counter() - started
        result["nights"].append(
            {
                "day": day,
                "seconds": round(seconds, 2),
                "expiry_seconds": round(halves["expiry"], 2),
                "notice_seconds": round(halves["notices"], 2),
                "customers_expired": report.customers_expired,
                "points_expired": report.points_expired,
                "notices": sum(report.notices.values()),
                "peak_rss_mb": round(peak_rss_mb(), 1),
            }
        )
    db.dispose()
    return result


# driving ----------------------------------------------------------------------------------


def run_size(args: argparse.Namespace, customers: int, workdir: Path) -> dict[str, Any]:
    path = workdir / f"expiry-{customers}.sqlite3"
    for stale in workdir.glob(f"{path.name}*"):
        stale.unlink()
    with database(args.database_url, workdir) as url:
        if not args.database_url:
            url = f"sqlite:///{path}"
        started = time.perf_counter()
        expected = build(url, customers, args.lots, args.spread_days, args.notice_days)
        build_seconds = time.perf_counter() - started
        size = f" ({path.stat().st_size / 2**20:,.0f} MiB)" if path.exists() else ""
        print(
            f"built {customers:,} customers, {expected.lots:,} lots, "
            f"{expected.ledger_entries:,} ledger entries in {build_seconds:.0f} s{size}",
            flush=True,
        )
        child = subprocess.run(
            [sys.executable, __file__, "--measure", url]
            + [arg for night in expected.nights for arg in ("--night", night.day)],
            capture_output=True,
            text=True,
            check=False,
        )
    if child.returncode:
        sys.exit(f"the measured run failed:\n{child.stderr}")
    measured = json.loads(child.stdout.splitlines()[-1])
    for got, want in zip(measured["nights"], expected.nights, strict=True):
        wanted = {k: v for k, v in asdict(want).items() if k != "day"}
        actual = {k: got[k] for k in wanted}
        if actual != wanted:
            sys.exit(f"{got['day']}: the run did {actual}, the data called for {wanted}")
    if not args.keep:
        for leftover in workdir.glob(f"{path.name}*"):
            leftover.unlink()
    return {"customers": customers, "lots": expected.lots, **measured}


def report(results: list[dict[str, Any]], notice_days: int, cpu_seconds: float) -> None:
    print()
    print(
        f"{'customers':>10} {'lots':>10} {'night':>7} {'expired':>9} {'points':>11} "
        f"{'notices':>9} {'seconds':>8} {'(expiry':>8} {'notices)':>9} {'target':>7} "
        f"{'ratio':>6} {'peak RSS':>9} "
        f"{'baseline':>9}"
    )
    for result in results:
        target = TARGET_SECONDS * result["customers"] / TARGET_CUSTOMERS
        for name, night in zip(("first", "steady"), result["nights"], strict=True):
            print(
                f"{result['customers']:>10,} {result['lots']:>10,} {name:>7} "
                f"{night['customers_expired']:>9,} {night['points_expired']:>11,} "
                f"{night['notices']:>9,} {night['seconds']:>8.1f} "
                f"{night['expiry_seconds']:>8.1f} {night['notice_seconds']:>9.1f} {target:>6.1f}s "
                f"{night['seconds'] / target:>6.2f} "
                f"{night['peak_rss_mb']:>6.0f} MB {result['baseline_rss_mb']:>6.0f} MB"
            )
    print(
        f"\nfirst night: expiry plus the whole {notice_days}-day notice window (nothing sent "
        "before); steady night: the next day, one new notice date; (expiry notices): the "
        "night's two halves. Target: < 60 s a night at "
        "1,000,000 customers (scaled for another size; ratio = seconds / target, under 1 "
        f"meets it); peak RSS flat across sizes. CPU reference: {cpu_seconds:.2f} s "
        "(bench/api.py's fixed Python loop, timed in this run)."
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--customers",
        type=int,
        action="append",
        help="customer count; repeat for several sizes (default: 1000000)",
    )
    parser.add_argument("--lots", type=int, default=3, help="point lots per customer")
    parser.add_argument("--spread-days", type=int, default=30, help="open lots expire over")
    parser.add_argument("--notice-days", type=int, default=7, help="the integration's N")
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL URL naming a database to create (dropped first) and drop; "
        "default: SQLite in --workdir",
    )
    parser.add_argument("--workdir", type=Path, help="where SQLite files go (default: tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--night", action="append", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.measure:
        print(json.dumps(measure(args.measure, args.night)))
        return
    if args.notice_days >= args.spread_days - 1:
        parser.error("--notice-days must be well under --spread-days")
    sizes = args.customers or [TARGET_CUSTOMERS]
    cpu_seconds = cpu_reference()
    with tempfile.TemporaryDirectory(prefix="pointbridge-expiry-") as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        results = [run_size(args, size, workdir) for size in sizes]
    report(results, args.notice_days, cpu_seconds)


if __name__ == "__main__":
    main()
