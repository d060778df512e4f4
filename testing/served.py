"""Serve a pointbridge app the way ``pointbridge run`` does (waitress) on a loopback port."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from waitress import wasyncore
from waitress.server import create_server

# What ``pointbridge run`` uses, so a test meets the same request concurrency.
SERVER_THREADS = 8
LOOP_TIMEOUT = 0.05


@contextmanager
def served(app: Flask, threads: int = SERVER_THREADS) -> Iterator[str]:
    """Yield the base URL of ``app`` served by waitress until the block ends."""
    server = create_server(app, host="127.0.0.1", port=0, threads=threads)
    stopping = threading.Event()

    def serve() -> None:
        # waitress's own run() loops until every client has hung up; this loop stops when
        # asked, and closes the channels itself, on the thread that owns them.
        while not stopping.is_set():
            wasyncore.loop(timeout=LOOP_TIMEOUT, map=server._map, count=1)
        server.task_dispatcher.shutdown()
        wasyncore.close_all(server._map)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        stopping.set()
        thread.join(timeout=30)
