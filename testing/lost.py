"""A fake platform whose answers get lost: the request is processed, the caller never hears.

That is how at-least-once delivery sends something twice (a timeout after the platform acted, a
worker killed before it recorded the answer): the caller must retry, and the platform sees the
same thing again. Wrap a fake's WSGI app, then serve it with ``FakeServer``::

    lossy = LosesAnswers(create_app(state), "POST", "/trigger-event", times=1)
    with FakeServer(lossy) as server:
        ...
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.wrappers import Response


class LosesAnswers:
    """Lets ``app`` process the first ``times`` requests to ``method path``, then closes the
    connection instead of answering them; every other request is answered normally."""

    def __init__(
        self, app: Callable[..., Iterable[bytes]], method: str, path: str, *, times: int = 1
    ) -> None:
        self.app = app
        self.method = method
        self.path = path
        self.left = times
        self._lock = threading.Lock()

    def _loses(self, environ: dict[str, Any]) -> bool:
        if (environ["REQUEST_METHOD"], environ["PATH_INFO"]) != (self.method, self.path):
            return False
        with self._lock:
            if self.left <= 0:
                return False
            self.left -= 1
            return True

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if not self._loses(environ):
            return self.app(environ, start_response)
        Response.from_app(self.app, environ)  # processed in full, answer discarded
        sock = environ.get("werkzeug.socket")
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
        # Werkzeug insists on a status; writing it to the closed socket fails quietly.
        start_response("500 Answer lost", [])
        return []
