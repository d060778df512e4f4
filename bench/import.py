"""Benchmark: `pointbridge customers import` of generated customers on SQLite and PostgreSQL.

Generates ``--rows`` customers (default 1,000,000) as a CSV file: e-mail, names, a PIN, the
counters, and an opening balance with an expiry date for each. For each database (a fresh
SQLite file, then a fresh PostgreSQL database when a server answers at
``POINTBRIDGE_TEST_POSTGRES_URL``), with one integration configured so contact updates are
queued, it runs the real command in a child process twice:

- *first import*: every row is a new customer with an opening balance;
- *re-import* of the same file: every row unchanged, so nothing should be written.

For each it prints the wall time, rows/s (check and load together) and their ratio to the
target, the child's CPU time (user + system: steadier than the wall time on a busy box), its
peak RSS and the outbox rows written; and once, a CPU reference figure (``bench/api.py``'s
fixed Python loop, timed in the same run) to compare runs on different boxes. Targets
(issue 16): >= 20,000 rows/s on SQLite and >= 10,000 rows/s on PostgreSQL, peak RSS < 200 MB.

Usage::

    .venv/bin/python bench/import.py                 # 1,000,000 rows, both databases
    .venv/bin/python bench/import.py --rows 100000 --database sqlite
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import create_engine, func, select

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere: import the host from the repo
    sys.path.insert(0, str(ROOT))

from bench.api import cpu_reference  # noqa: E402
from pointbridge.storage.migrate import upgrade  # noqa: E402
from pointbridge.storage.models import OutboxMessage  # noqa: E402

POINTBRIDGE = Path(sys.executable).with_name("pointbridge")
# Issue 16's targets for a first import of 1,000,000 rows on the 2-CPU box, and its memory cap.
TARGET_ROWS_PER_SECOND = {"sqlite": 20_000, "postgres": 10_000}
TARGET_RSS_MB = 200


def write_csv(path: Path, rows: int) -> None:
    expiry = date.today() + timedelta(days=365)
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(
            ["email", "first_name", "last_name", "pin", "missions", "points", "expires_at"]
        )
        for n in range(rows):
            day = (expiry + timedelta(days=n % 300)).isoformat()
            writer.writerow([f"c{n}@example.com", f"Name{n}", "Novak", f"{n:06d}", n % 7, 100, day])


@contextlib.contextmanager
def databases(kind: str, workdir: Path) -> Iterator[tuple[str, str]]:
    """Yield (label, URL) of a fresh, migrated database."""
    if kind == "sqlite":
        url = f"sqlite:///{workdir / 'bench.sqlite3'}"
        upgrade(url)
        yield "SQLite", url
        return
    from pointbridge.testing.databases import fresh_postgres_database

    with fresh_postgres_database() as url:
        upgrade(url)
        yield "PostgreSQL", url


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(args: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Run the command; its wall time, its CPU time and the peak RSS (MB) of children so
    far."""
    started, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run([str(POINTBRIDGE), *args], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{args} failed:\n{done.stdout}\n{done.stderr}")
    print("   ", done.stdout.strip().splitlines()[-1])
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return elapsed, _children_cpu() - cpu, rss


def outbox_rows(url: str) -> int:
    engine = create_engine(url)
    with engine.connect() as connection:
        count = connection.scalar(select(func.count()).select_from(OutboxMessage))
    engine.dispose()
    return int(count or 0)


def bench(kind: str, source: Path, rows: int, workdir: Path) -> None:
    with databases(kind, workdir) as (label, url):
        env = {
            **os.environ,
            "POINTBRIDGE_DATABASE_URL": url,
            "POINTBRIDGE_INSTANCE": str(workdir / f"instance-{kind}"),
            "POINTBRIDGE_SECRET_KEY": "bench-only-secret-key",
        }
        run(["integrations", "add", "dry", "--plugin", "jsonl", "--set",
             f"path={workdir / 'dry.jsonl'}"], env)  # fmt: skip
        target = TARGET_ROWS_PER_SECOND[kind]
        for name in ("first import", "re-import"):
            before = outbox_rows(url)
            elapsed, cpu, rss = run(["customers", "import", str(source)], env)
            print(
                f"{label:10} {name:12} {elapsed:7.1f} s  {rows / elapsed:9,.0f} rows/s  "
                f"ratio {rows / elapsed / target:4.2f} of {target:,}  "
                f"CPU {cpu:6.1f} s  peak RSS (any child so far) {rss:5.0f} MB  "
                f"outbox rows written {outbox_rows(url) - before:,}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--database", choices=["sqlite", "postgres", "postgresql", "both"], default="both"
    )
    options = parser.parse_args()
    kinds = {"both": ["sqlite", "postgres"], "postgresql": ["postgres"]}.get(
        options.database, [options.database]
    )
    with tempfile.TemporaryDirectory(prefix="import-bench-") as tmp:
        workdir = Path(tmp)
        source = workdir / "customers.csv"
        write_csv(source, options.rows)
        print(f"{options.rows:,} rows, {source.stat().st_size / 2**20:.0f} MB of CSV")
        print(f"CPU reference: {cpu_reference():.2f} s (bench/api.py's fixed Python loop)")
        for kind in kinds:
            bench(kind, source, options.rows, workdir)
    print(
        "ratio = rows/s / the target rows/s (1 or more meets it; the targets are for a first "
        f"import of 1,000,000 rows); peak RSS target < {TARGET_RSS_MB} MB"
    )


if __name__ == "__main__":
    main()
