"""The platforms' fakes as the benchmarks serve them: each in a process of its own, by waitress.

``fake_platform(platform, latency)`` serves a plugin's own fake behind a ``Front`` that answers
every request ``latency`` after it arrived and enforces the platform's documented limits with
the platform's own 429, so the fake's CPU is not the host's and the figures measure
pointbridge. ``bench=True`` puts the fake in bench mode (a bulk call answered from the
addresses in its body, nothing stored: for exports); ``bench=False`` keeps the fake's state,
which live delivery needs (Splio PATCHes, Ecomail's events go to contacts it has).
``serve_in_child`` serves any WSGI app a top-level function makes, for a fake that is not a
platform's (the delivery tests' ``fakeesp``).

The front answers ``GET /_bench/stats`` (requests, 429s, distinct addresses in 2xx bodies,
seconds until the limits' windows are clear) and, with ``record=True``, ``GET
/_bench/requests?since=T``: every request answered 2xx that arrived after ``T`` (wall time),
with its body, for a benchmark to tell what arrived when.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import requests

STATS_PATH = "/_bench/stats"
REQUESTS_PATH = "/_bench/requests"
Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Any]


@dataclass(frozen=True)
class Budget:
    """One of the platform's documented limits, as the fake enforces it."""

    calls: int
    per_seconds: float
    applies: Callable[[str, str], bool]  # (method, path)


@dataclass(frozen=True)
class Fake:
    """A platform's fake, and what an integration needs to reach it."""

    app: Wsgi
    throttled: Callable[[float], tuple[int, dict[str, str], bytes]]
    budgets: list[Budget]
    settings: dict[str, str]  # the integration's settings but api_url
    # Requests of one export page that count against the first budget, and the page's wall
    # time at the platform beyond its requests' latency (the plugin's own waits).
    limited_per_page: int = 1
    requests_per_page: int = 1
    waits_per_page: float = 0.0


def _any_request(method: str, path: str) -> bool:
    return True


def make_fake(platform: str, *, bench: bool = True) -> Fake:
    """The plugin's fake, with the limits its platform documents."""
    from pointbridge.plugins import PluginHost

    declared = PluginHost().platform(platform)
    assert declared.rate_limit is not None
    main = declared.rate_limit
    if platform == "smartemailing":
        from pointbridge_smartemailing import fake as se

        state = se.FakeSmartEmailing(bench=bench)
        return Fake(
            se.create_app(state),
            se.throttled,
            [Budget(main.calls, main.per_seconds, _any_request)],
            {"username": state.username, "api_key": state.api_key},
        )
    if platform == "ecomail":
        from pointbridge_ecomail import fake as eco

        account = eco.FakeEcomail(api_key="bench-ecomail-key", bench=bench)
        account.add_list("Customers", 1)
        return Fake(
            eco.create_app(account),
            eco.throttled,
            [Budget(main.calls, main.per_seconds, _any_request)],
            {"api_key": account.api_key, "list_id": "1"},
        )
    if platform == "dotmailer":
        from pointbridge_dotmailer import client as dd_client
        from pointbridge_dotmailer import fake as dd

        dd_state = dd.DotdigitalState(address_books={7: "Customers"}, bench=bench)
        polls = dd_state.imports.finish_after_polls + 1
        return Fake(
            dd.create_app(dd_state),
            dd.throttled,
            # The documented 35/min is the "low" tier of bulk imports; status polls are not in it.
            [Budget(main.calls, main.per_seconds, lambda m, p: p == "/contacts/v3/import")],
            {
                "username": dd_state.username,
                "password": dd_state.password,
                "address_book_id": "7",
            },
            requests_per_page=1 + polls,
            waits_per_page=sum(dd_client.POLL_DELAYS[:polls]),
        )
    if platform == "splio":
        from pointbridge_splio import fake as splio
        from pointbridge_splio.client import OFF_CONTACTS

        universe = splio.FakeSplio(api_keys={"bench-splio-key"}, bench=bench)
        other = declared.rate_limits[OFF_CONTACTS]

        def contacts(method: str, path: str) -> bool:
            return path.startswith("/data/contacts")

        return Fake(
            splio.create_app(universe),
            splio.throttled,
            [
                Budget(main.calls, main.per_seconds, contacts),
                Budget(other.calls, other.per_seconds, lambda m, p: not contacts(m, p)),
            ],
            # The interaction channel the fake has set up: events are sent only with one.
            {"api_key": "bench-splio-key", "events_channel": "loyalty"},
        )
    raise ValueError(f"no fake for {platform}")


class Front:
    """WSGI front of a fake: the platform's limits with its own 429, an answer no sooner than
    ``latency`` after arrival, and counts (requests, 429s, distinct addresses in 2xx bodies);
    with ``record``, every 2xx request's arrival time, method, path and body."""

    def __init__(self, fake: Fake, latency: float, *, record: bool = False) -> None:
        from pointbridge.testing.server import RateLimitRule

        self.fake = fake
        self.latency = latency
        self.record = record
        self.rules = [
            (budget, RateLimitRule(budget.calls, budget.per_seconds, fake.throttled))
            for budget in fake.budgets
        ]
        self.lock = threading.Lock()
        self.requests = 0
        self.throttled = 0
        self.addresses: set[str] = set()
        self.recorded: list[tuple[float, str, str, str]] = []

    @staticmethod
    def _quiet_in(rule: Any) -> float:
        """Seconds until the rule's window holds none of the requests made so far."""
        with rule._lock:
            newest = rule._times[-1] if rule._times else -rule.per_seconds
        return max(0.0, newest + rule.per_seconds - time.monotonic())

    def _own(self, path: str, query: str) -> bytes | None:
        """The answer to the benchmark's own requests, None for the platform's."""
        with self.lock:
            if path == STATS_PATH:
                return json.dumps(
                    {
                        "requests": self.requests,
                        "throttled": self.throttled,
                        "addresses": len(self.addresses),
                        "quiet_in": max((self._quiet_in(r) for _, r in self.rules), default=0),
                    }
                ).encode()
            if path == REQUESTS_PATH:
                since = float(parse_qs(query).get("since", ["0"])[0])
                return json.dumps([r for r in self.recorded if r[0] > since]).encode()
        return None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        from pointbridge.testing.fakes import emails_in

        arrived, wall = time.monotonic(), time.time()
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        own = self._own(path, environ.get("QUERY_STRING", ""))
        if own is not None:
            start_response("200 OK", [("Content-Type", "application/json")])
            return [own]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        hit = next(
            (
                answer
                for budget, rule in self.rules
                if budget.applies(method, path) and (answer := rule.check(path))
            ),
            None,
        )
        if hit is not None:
            status, headers, payload = hit
            answer = [payload]
            start = (f"{status} Too Many Requests", [*headers.items()])
        else:
            captured: list[Any] = []
            answer = list(self.fake.app(environ, lambda s, h, *e: captured.extend((s, h))))
            start = (captured[0], captured[1])
        with self.lock:
            self.requests += 1
            self.throttled += hit is not None
            if start[0].startswith("2") and method in ("POST", "PUT", "PATCH"):
                if hit is None:
                    self.addresses.update(emails_in(body))
                if self.record:
                    self.recorded.append((wall, method, path, body.decode(errors="replace")))
        time.sleep(max(0.0, arrived + self.latency - time.monotonic()))
        start_response(*start)
        return answer


def fronted_fake(platform: str, latency: float, bench: bool, record: bool) -> Wsgi:
    return Front(make_fake(platform, bench=bench), latency, record=record)


def _serve(make_app: Callable[..., Wsgi], args: tuple[Any, ...], urls: Any) -> None:
    from waitress.server import create_server

    server = create_server(make_app(*args), host="127.0.0.1", port=0, threads=8)
    urls.put(f"http://127.0.0.1:{server.effective_port}")
    server.run()


@contextmanager
def serve_in_child(make_app: Callable[..., Wsgi], *args: Any) -> Iterator[str]:
    """``make_app(*args)`` (a top-level function: the child imports it) served by waitress in
    a child process; yields its URL."""
    context = multiprocessing.get_context("spawn")
    urls = context.Queue()
    process = context.Process(target=_serve, args=(make_app, args, urls), daemon=True)
    process.start()
    try:
        yield urls.get(timeout=60)
    finally:
        process.terminate()
        process.join(10)


@contextmanager
def fake_platform(
    platform: str, latency: float, *, bench: bool = True, record: bool = False
) -> Iterator[str]:
    """The platform's fake behind a ``Front``, in a child process; yields its URL."""
    with serve_in_child(fronted_fake, platform, latency, bench, record) as url:
        yield url


def fake_stats(url: str) -> dict[str, Any]:
    return requests.get(url + STATS_PATH, timeout=30).json()


def fake_requests(url: str, since: float = 0.0) -> list[tuple[float, str, str, str]]:
    """The 2xx requests (arrival wall time, method, path, body) a recording front saw after
    ``since``."""
    answer = requests.get(url + REQUESTS_PATH, params={"since": repr(since)}, timeout=60)
    return [tuple(r) for r in answer.json()]
