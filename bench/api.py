"""Benchmark: points transactions and webhooks per second over HTTP, and their latency.

A real server process (``pointbridge run --workers N --threads T``, gunicorn's web processes
with the delivery worker and scheduler beside them, as in production) on a fresh database
(``--customers`` customers with 1,000 points each, one ``jsonl`` integration that takes
events and rewards list 1 with 50 points), and a load generator on loopback: ``--processes``
processes of threads, each thread one keep-alive connection (``http.client``: little CPU of
its own, since it shares the box's cores with the server). For each of
``POST /api/customers/{id}/transactions`` (four credits of 5 to one debit of 3, each with its
own reference, spread over the customers) and the platform webhook (list 1 subscribed and
unsubscribed in turn, one customer after another):

1. *Throughput*: ``--connections`` connections sending back to back for ``--seconds``:
   requests/s, p50 and p99.
2. *Latency at an offered rate*: ``--rate`` requests/s (default 400: 80 % of the 500/s target)
   scheduled at fixed times for ``--seconds``; latency counts from the scheduled time, so a
   client that falls behind shows it; the run says whether it reached the offered rate.
3. With ``--expiry``: the offered-rate run of transactions again while
   ``pointbridge expiry run`` expires a day's lots for every customer.

Also printed: CPU per request (user + system time over the run, divided by the requests) of
the web processes, of the background process (delivery worker and scheduler: the changes'
deliveries to the ``jsonl`` file) and of the load generator; and a CPU reference figure (a
fixed pure-Python loop timed in the same run) to compare runs on different boxes.

Usage::

    .venv/bin/python bench/api.py                                   # SQLite, about 2 minutes
    .venv/bin/python bench/api.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/x
    .venv/bin/python bench/api.py --seconds 5 --customers 200       # quicker

A PostgreSQL URL names a database the script creates (dropped first if it exists) and drops.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere: import the host from the repo
    sys.path.insert(0, str(ROOT))

TARGET = 500.0  # requests/s, issue 15
REACHED = 0.95  # an offered-rate run that completes less than this share did not reach it
LIST_REWARD = 50
OPENING = 1000  # points each customer starts with
POINTBRIDGE = Path(sys.executable).parent / "pointbridge"
CPU_LOOP = 3_000_000


def cpu_reference() -> float:
    """Seconds for a fixed pure-Python loop: what this box's CPU allows one thread now."""
    start = time.perf_counter()
    total = 0
    for n in range(CPU_LOOP):
        total += n * n % 7
    return time.perf_counter() - start


@dataclass(frozen=True)
class Shop:
    base: str
    token: str
    webhook_path: str
    customers: int


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def database(url: str | None, folder: Path) -> Iterator[str]:
    if url is None:
        yield f"sqlite:///{folder / 'pointbridge.sqlite3'}"
        return
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    admin = url.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench_env(database_url: str, folder: Path) -> dict[str, str]:
    """The environment of a benchmark's pointbridge: its own database and instance folder,
    only the dry-run plugin."""
    return {
        "POINTBRIDGE_DATABASE_URL": database_url,
        "POINTBRIDGE_INSTANCE": str(folder / "instance"),
        "POINTBRIDGE_SECRET_KEY": "bench-only-secret-key-bench-only-secret-key",
        "POINTBRIDGE_PLUGINS": "jsonl",
        "POINTBRIDGE_PUBLIC_URL": "http://127.0.0.1",
    }


def prepare(env: dict[str, str], customers: int, folder: Path) -> tuple[str, str]:
    """Migrate and fill the database in this process; returns the token and webhook path."""
    os.environ.update(env)
    from sqlalchemy import insert

    from pointbridge.access.tokens import create_token
    from pointbridge.plugins import PluginHost, allowed_plugins_from_env
    from pointbridge.services import Services
    from pointbridge.settings import Settings
    from pointbridge.storage.migrate import upgrade
    from pointbridge.storage.models import Customer, LedgerEntry, PointLot

    upgrade(env["POINTBRIDGE_DATABASE_URL"])
    services = Services.build(Settings.from_env(), PluginHost(allowed_plugins_from_env()))
    with services.db.transaction() as session:
        token = create_token(session, "bench")
        row = services.integrations.add(
            session,
            "bench",
            "jsonl",
            {"path": str(folder / "out.jsonl"), "list_rewards": f"1:{LIST_REWARD}"},
        )
        webhook_path = urlsplit(services.integrations.webhook_url(row)).path
        now = datetime.now(UTC)
        tomorrow = date.today() + timedelta(days=1)
        ids = session.scalars(
            insert(Customer).returning(Customer.id, sort_by_parameter_order=True),
            [
                {
                    "email": f"c{n}@example.com",
                    "referral_code": f"R{n:09d}",
                    "balance": OPENING,
                    "last_change_at": now,
                    "last_change_points": OPENING,
                }
                for n in range(1, customers + 1)
            ],
        ).all()
        # The load generator names customers 1..N: true of a fresh database.
        assert ids == list(range(1, customers + 1)), "the database was not empty"
        # The opening credits expire tomorrow (the server's scheduler catches up today's run
        # at start): what ``--expiry`` runs the nightly job over.
        entries = session.execute(
            insert(LedgerEntry).returning(
                LedgerEntry.id, LedgerEntry.customer_id, sort_by_parameter_order=True
            ),
            [
                {
                    "customer_id": n,
                    "points": OPENING,
                    "reason": "open",
                    "expires_on": tomorrow,
                    "created_at": now,
                }
                for n in ids
            ],
        ).all()
        session.execute(
            insert(PointLot),
            [
                {
                    "customer_id": customer_id,
                    "entry_id": entry_id,
                    "points": OPENING,
                    "remaining": OPENING,
                    "expires_on": tomorrow,
                }
                for entry_id, customer_id in entries
            ],
        )
    services.db.dispose()
    return token, webhook_path


@contextmanager
def server(env: dict[str, str], workers: int, threads: int) -> Iterator[tuple[str, int]]:
    port = _free_port()
    process = subprocess.Popen(
        [
            POINTBRIDGE,
            "run",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--threads",
            str(threads),
        ],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"127.0.0.1:{port}", process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_up(shop: Shop, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection(shop.base, timeout=5)
            connection.request(
                "GET", "/api/customers?limit=1", headers={"Authorization": f"Bearer {shop.token}"}
            )
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not answer within a minute")


def request_for(shop: Shop, kind: str, n: int) -> tuple[str, bytes, dict[str, str]]:
    """The n-th request of a run: path, body, headers."""
    customer = n % shop.customers + 1
    if kind == "transactions":
        points = -3 if n % 5 == 4 else 5
        body = {"points": points, "reason": "order", "reference": f"b-{os.getpid()}-{n}"}
        path = f"/api/customers/{customer}/transactions"
        headers = {"Authorization": f"Bearer {shop.token}"}
    else:
        subscribed = (n // shop.customers) % 2 == 0
        body = {"email": f"c{customer}@example.com", "list_id": "1", "subscribed": subscribed}
        path, headers = shop.webhook_path, {}
    return path, json.dumps(body).encode(), {**headers, "Content-Type": "application/json"}


def load_process(
    shop: Shop,
    kind: str,
    threads: int,
    first: int,
    step: int,
    seconds: float,
    rate: float | None,
    start_at: float,
    results: Any,
) -> None:
    """One load-generating process: ``threads`` keep-alive connections sending requests
    first, first + step, ... back to back, or each at its scheduled time (``rate``, this
    process's share); puts its latencies, last answer's time, statuses and a few error
    bodies on ``results``."""
    latencies: list[float] = []
    finished: list[float] = []
    statuses: dict[int, int] = {}
    samples: list[str] = []
    lock = threading.Lock()
    counter = iter(range(first, 10**12, step))
    end = start_at + seconds

    def run() -> None:
        connection = http.client.HTTPConnection(shop.base, timeout=60)
        while True:
            with lock:
                n = next(counter)
            if rate is None:
                scheduled = time.time()
            else:
                scheduled = start_at + (n - first) / step / rate
                delay = scheduled - time.time()
                if delay > 0:
                    time.sleep(delay)
            # A server that falls behind is not waited for: what it did not answer by the end
            # counts against the rate, and the run lasts what it says.
            if scheduled >= end or time.time() >= end:
                return
            path, body, headers = request_for(shop, kind, n)
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            done = time.time()
            with lock:
                latencies.append(done - scheduled)
                finished.append(done)
                statuses[response.status] = statuses.get(response.status, 0) + 1
                if response.status >= 400 and len(samples) < 3:
                    samples.append(answer.decode(errors="replace")[:200])

    time.sleep(max(0.0, start_at - time.time()))
    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    results.put((latencies, max(finished, default=start_at), statuses, samples))


@dataclass
class RunResult:
    kind: str
    offered: float | None
    seconds: float  # from the first request sent to the last answer
    latencies: list[float]
    statuses: dict[int, int]
    samples: list[str]
    server_cpu: tuple[float, float]  # web processes, the background process
    client_cpu: float

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000

    def line(self) -> str:
        offered = "back to back" if self.offered is None else f"offered {self.offered:.0f}/s"
        reached = ""
        if self.offered is not None:
            reached = (
                " (reached)"
                if self.rate >= REACHED * self.offered
                else f" (NOT reached: {self.rate / self.offered:.0%} of the offered rate)"
            )
        errors = {s: c for s, c in sorted(self.statuses.items()) if s >= 400}
        requests = max(len(self.latencies), 1)
        web, background = (seconds / requests * 1000 for seconds in self.server_cpu)
        client = self.client_cpu / requests * 1000
        return (
            f"{self.kind:12} {offered:>16}: {self.rate:7.1f}/s{reached}, p50 "
            f"{self.percentile(0.5):6.1f} ms, p99 {self.percentile(0.99):7.1f} ms, "
            f"CPU/request: web {web:.2f} ms, background {background:.2f} ms, "
            f"load generator {client:.2f} ms; "
            f"non-2xx {errors or 'none'}"
            + "".join(f"\n    e.g. {sample}" for sample in self.samples[:1])
        )


def server_cpu_seconds(pid: int) -> tuple[float, float]:
    """User + system CPU so far of the web processes (gunicorn's, under the server process)
    and of the server process itself, which runs the delivery worker and the scheduler."""
    root = psutil.Process(pid)
    web = 0.0
    for process in root.children(recursive=True):
        with suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            web += times.user + times.system
    own = root.cpu_times()
    return web, own.user + own.system


def load(
    shop: Shop,
    pid: int,
    kind: str,
    *,
    processes: int,
    connections: int,
    seconds: float,
    rate: float | None,
    offset: int,
) -> RunResult:
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    start_at = time.time() + 1.0
    share = None if rate is None else rate / processes
    children = [
        context.Process(
            target=load_process,
            args=(
                shop,
                kind,
                max(1, connections // processes),
                offset + p,
                processes,
                seconds,
                share,
                start_at,
                results,
            ),
        )
        for p in range(processes)
    ]
    for child in children:
        child.start()
    time.sleep(max(0.0, start_at - time.time()))
    cpu_before = server_cpu_seconds(pid)
    client_before = _children_cpu_seconds()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    samples: list[str] = []
    last = start_at
    for _ in children:
        found, finished, counts, errors = results.get()
        latencies += found
        last = max(last, finished)
        samples += errors
        for status, count in counts.items():
            statuses[status] = statuses.get(status, 0) + count
    cpu_after = server_cpu_seconds(pid)
    cpu = (cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1])
    for child in children:
        child.join()
    client = _children_cpu_seconds() - client_before
    return RunResult(kind, rate, last - start_at, latencies, statuses, samples, cpu, client)


def _children_cpu_seconds() -> float:
    """User + system CPU of this process's children that have ended (the load generators)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL URL (default: SQLite)")
    parser.add_argument("--workers", type=int, default=2, help="web processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per web process")
    parser.add_argument("--processes", type=int, default=2, help="load-generating processes")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rate", type=float, default=0.8 * TARGET)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--expiry", action="store_true", help="also the p99 during expiry")
    args = parser.parse_args()

    reference = cpu_reference()
    folder = Path(tempfile.mkdtemp(prefix="pointbridge-bench-api-"))
    try:
        with database(args.database_url, folder) as url:
            env = bench_env(url, folder)
            token, webhook_path = prepare(env, args.customers, folder)
            database_name = "PostgreSQL" if args.database_url else "SQLite"
            print(
                f"{database_name}, pointbridge run --workers {args.workers} --threads "
                f"{args.threads}; load: {args.processes} processes, {args.connections} "
                f"keep-alive connections, {args.seconds:.0f} s per run, {args.customers} "
                f"customers; {os.cpu_count()} CPUs"
            )
            with server(env, args.workers, args.threads) as (base, pid):
                shop = Shop(base, token, webhook_path, args.customers)
                wait_until_up(shop)
                options = {"processes": args.processes, "seconds": args.seconds}
                results = []
                for n, kind in enumerate(("transactions", "webhooks")):
                    for rate in (None, args.rate):
                        result = load(
                            shop,
                            pid,
                            kind,
                            connections=args.connections,
                            rate=rate,
                            offset=(len(results) + 1) * 10**9 + n,
                            **options,
                        )
                        results.append(result)
                        print(result.line(), flush=True)
                if args.expiry:
                    expiry = threading.Thread(target=run_expiry, args=(env,))
                    expiry.start()
                    result = load(
                        shop,
                        pid,
                        "transactions",
                        connections=args.connections,
                        rate=args.rate,
                        offset=9 * 10**9,
                        **options,
                    )
                    expiry.join()
                    # The expiry command is a child that ended: its CPU is in the client's.
                    print(result.line().replace("transactions", "tx + expiry "), flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"CPU reference: {reference:.2f} s for {CPU_LOOP:,} turns of a fixed Python loop")
    for result in results:
        if result.offered is None:
            print(
                f"{result.kind}: {result.rate:.0f}/s / {TARGET:.0f}/s target = "
                f"{result.rate / TARGET:.0%} of the target"
            )


def run_expiry(env: dict[str, str]) -> None:
    """The nightly job for the day after tomorrow, when every opening lot has expired."""
    day = (date.today() + timedelta(days=2)).isoformat()
    started = time.monotonic()
    subprocess.run(
        [POINTBRIDGE, "expiry", "run", "--date", day],
        env={**os.environ, **env},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    print(f"expiry run for {day}: {time.monotonic() - started:.1f} s", flush=True)


if __name__ == "__main__":
    main()
