"""Serve a pointbridge app the way ``pointbridge run`` does (waitress) on a loopback port."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from waitress.server import create_server

# What ``pointbridge run`` uses, so a test meets the same request concurrency.
SERVER_THREADS = 8


@contextmanager
def served(app: Flask, threads: int = SERVER_THREADS) -> Iterator[str]:
    """Yield the base URL of ``app`` served by waitress until the block ends."""
    server = create_server(
        app, host="127.0.0.1", port=0, threads=threads, clear_untrusted_proxy_headers=True
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()
        thread.join(timeout=10)
