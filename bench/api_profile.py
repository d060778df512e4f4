"""Where one API request's CPU goes: the app called in this process, no HTTP, one thread.

Builds the same shop as ``bench/api.py`` (a fresh database, ``--customers`` customers, one
``jsonl`` integration that takes events and rewards list 1), then sends ``--requests``
transactions and as many webhooks straight to the WSGI app (an environ dict per request, as a
server would pass: no test client, whose own work would be counted), first timed, then under
cProfile. Prints CPU per request, the CPU reference figure, and the own time by package
(pointbridge, flask, werkzeug, sqlalchemy, the driver, ...) with the top functions.

Usage::

    .venv/bin/python bench/api_profile.py                 # SQLite
    .venv/bin/python bench/api_profile.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/x
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from api import Shop, bench_env, cpu_reference, database, prepare, request_for

CPU_LOOP_NOTE = "CPU reference: {:.2f} s for 3,000,000 turns of a fixed Python loop"


def environ_for(path: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """The WSGI environ a server builds for one POST."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "5000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": headers.pop("Content-Type"),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in headers.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    return environ


def send(app: Callable[..., Iterable[bytes]], shop: Shop, kind: str, numbers: range) -> None:
    statuses: list[str] = []

    def start_response(status: str, _headers: Any, _exc_info: Any = None) -> None:
        statuses.append(status)

    for n in numbers:
        path, body, headers = request_for(shop, kind, n)
        b"".join(app(environ_for(path, body, dict(headers)), start_response))
        if statuses[-1][0] != "2":
            raise SystemExit(f"{kind} request {n} answered {statuses[-1]}")


def package_of(filename: str, name: str) -> str:
    """Who owns a profiled function: a package, the standard library, or C code by its type."""
    if filename == "~":  # a built-in: "<method 'execute' of 'sqlite3.Cursor' objects>"
        owner = name.split(" of '", 1)[1].split("'", 1)[0] if " of '" in name else "builtins"
        return owner.split(".", 1)[0] + " (C)"
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/lib/python3" in filename:
        return "stdlib"
    return "pointbridge" if "/core/" in filename or "/web/" in filename else filename


def report(profile: cProfile.Profile, requests: int, top: int) -> None:
    stats = pstats.Stats(profile)
    total = sum(entry[2] for entry in stats.stats.values())  # type: ignore[attr-defined]
    by_package: dict[str, float] = defaultdict(float)
    for (filename, _line, name), entry in stats.stats.items():  # type: ignore[attr-defined]
        by_package[package_of(filename, name)] += entry[2]
    print(f"  own time by package (profiled {total / requests * 1000:.2f} ms a request):")
    for package, seconds in sorted(by_package.items(), key=lambda item: -item[1])[:12]:
        print(f"    {package:24} {seconds / total:5.1%}")
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(top)
    print("\n".join(out.getvalue().splitlines()[6:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL URL (default: SQLite)")
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--top", type=int, default=25, help="functions listed per kind")
    args = parser.parse_args()
    reference = cpu_reference()
    folder = Path(tempfile.mkdtemp(prefix="pointbridge-bench-profile-"))
    try:
        with database(args.database_url, folder) as url:
            env = bench_env(url, folder)
            token, webhook_path = prepare(env, args.customers, folder)
            from pointbridge.web import create_app

            app = create_app()
            shop = Shop("", token, webhook_path, args.customers)
            for offset, kind in enumerate(("transactions", "webhooks")):
                start = (offset + 1) * 10**6
                send(app, shop, kind, range(start - 50, start))  # warm caches and the pool
                began = time.process_time()
                send(app, shop, kind, range(start, start + args.requests))
                cpu = (time.process_time() - began) / args.requests * 1000
                print(f"{kind}: {cpu:.2f} ms CPU a request ({args.requests}, unprofiled)")
                profile = cProfile.Profile()
                second = range(start + args.requests, start + 2 * args.requests)
                profile.runcall(send, app, shop, kind, second)
                report(profile, args.requests, args.top)
            app.extensions["pointbridge"].db.dispose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(CPU_LOOP_NOTE.format(reference))


if __name__ == "__main__":
    main()
