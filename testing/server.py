"""A fake email platform served on a real loopback port.

Wrap a platform's fake (any WSGI app, usually a small Flask app that follows the platform's
documented API) in ``FakeServer`` to get a URL, a record of every request, a rate limit that
answers 429 the way the platform does, and injected failures (500, 503, 429 with Retry-After,
responses slower than the client's timeout, dropped connections): planned for the next
requests (``fail_next``), which a test on a slow machine meets exactly as on a fast one, or
drawn at a set rate for soak tests.
"""

from __future__ import annotations

import io
import json
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

FAULT_KINDS = ("500", "503", "429", "slow", "drop")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    status: int

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Faults:
    """Inject failures into ``rate`` (0..1) of the requests, drawn from ``kinds``.

    ``slow`` answers normally but after ``slow_seconds`` (the request IS processed, as on a
    real server whose client gave up), ``drop`` closes the connection without an answer and
    does not process the request, ``429`` carries ``Retry-After: retry_after``.
    """

    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    slow_seconds: float = 2.0
    retry_after: float = 0.1
    seed: int | None = None
    _random: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; pick from {FAULT_KINDS}")
        self._random = random.Random(self.seed)

    def draw(self) -> str | None:
        if self.rate and self._random.random() < self.rate:
            return self._random.choice(self.kinds)
        return None


# A 429 response: status, headers, body.
Throttled = tuple[int, dict[str, str], bytes]


@dataclass
class RateLimitRule:
    """At most ``calls`` requests per ``per_seconds`` (sliding window) for paths matching.

    ``respond(wait_seconds)`` builds the platform's own 429 (its headers and body).
    ``applies(path)`` limits the rule to some paths (Splio limits contacts and the rest apart).
    """

    calls: int
    per_seconds: float
    respond: Callable[[float], Throttled] = field(
        default=lambda wait: (429, {"Retry-After": f"{max(1, round(wait))}"}, b"")
    )
    applies: Callable[[str], bool] = field(default=lambda path: True)
    _times: deque[float] = field(default_factory=deque, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def check(self, path: str) -> Throttled | None:
        if not self.applies(path):
            return None
        with self._lock:
            now = time.monotonic()
            while self._times and now - self._times[0] >= self.per_seconds:
                self._times.popleft()
            if len(self._times) >= self.calls:
                # calls=0 throttles everything: the wait is a whole window.
                oldest = self._times[0] if self._times else now
                return self.respond(self.per_seconds - (now - oldest))
            self._times.append(now)
            return None


@dataclass(frozen=True)
class _PlannedFault:
    kind: str
    path: str | None
    retry_after: float


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass

    def log_error(self, *args: Any, **kwargs: Any) -> None:
        pass


class FakeServer:
    """Serves ``app`` on ``127.0.0.1`` on a free port in a background thread.

    Use as a context manager; ``url`` is the base URL, ``requests`` the recorded requests
    (those answered by the app and those the faults or the rate limit answered).
    """

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        *,
        faults: Faults | None = None,
        rate_limits: Iterable[RateLimitRule] = (),
        error_body: Callable[[int], bytes] = lambda status: b'{"message":"Internal error"}',
        throttled: Callable[[float], Throttled] = lambda wait: (
            429,
            {"Retry-After": f"{wait:g}"},
            b"",
        ),
    ) -> None:
        self.app = app
        self.faults = faults or Faults()
        self.rate_limits = list(rate_limits)
        self.error_body = error_body
        self.throttled = throttled
        self._planned: deque[_PlannedFault] = deque()
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._server = make_server(
            "127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_QuietHandler
        )
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> FakeServer:
        return self.__enter__()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(
        self, count: int, kind: str, *, path: str | None = None, retry_after: float = 1.0
    ) -> None:
        """Answer the next ``count`` requests (to ``path`` only, if given) with fault ``kind``
        (one of ``FAULT_KINDS``) instead of the app; a ``429`` is the platform's own (the
        ``throttled`` responder) waiting ``retry_after`` seconds. Planned faults come before
        any drawn at random, in the order planned."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; pick from {FAULT_KINDS}")
        with self._lock:
            self._planned.extend(_PlannedFault(kind, path, retry_after) for _ in range(count))

    def _next_planned(self, path: str) -> _PlannedFault | None:
        with self._lock:
            for planned in self._planned:
                if planned.path is None or planned.path == path:
                    self._planned.remove(planned)
                    return planned
        return None

    def clear(self) -> None:
        """Forget the recorded requests (the app's own state is the app's business)."""
        with self._lock:
            self.requests.clear()

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    def _record(self, request: Request, body: bytes, status: int) -> None:
        with self._lock:
            self.requests.append(
                RecordedRequest(
                    request.method,
                    request.path,
                    dict(request.args),
                    dict(request.headers),
                    body,
                    status,
                )
            )

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        body = request.get_data(cache=True)
        # The app reads the body again from the environ, which reading it here exhausted.
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        planned = self._next_planned(request.path)
        fault = planned.kind if planned else self.faults.draw()
        if fault == "drop":
            self._record(request, body, 0)
            sock = environ.get("werkzeug.socket")
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
            # Werkzeug insists on a status; writing it to the closed socket fails quietly.
            start_response("500 Dropped", [])
            return []
        throttled: Throttled | None = None
        if fault == "429":
            throttled = self.throttled(planned.retry_after if planned else self.faults.retry_after)
        else:
            throttled = next(
                (hit for rule in self.rate_limits if (hit := rule.check(request.path))), None
            )
        if fault in ("500", "503"):
            response = Response(self.error_body(int(fault)), status=int(fault))
            response.content_type = "application/json"
        elif throttled:
            status, headers, payload = throttled
            response = Response(payload, status=status, headers=headers)
            response.content_type = "application/json"
        else:
            if fault == "slow":
                time.sleep(self.faults.slow_seconds)
            response = Response.from_app(self.app, environ)
        self._record(request, body, response.status_code)
        return response(environ, start_response)
