"""Serve a pointbridge app the way ``pointbridge run`` does (waitress) on a loopback port, and
send it requests from many client threads at once."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import requests
from flask import Flask
from waitress import wasyncore
from waitress.server import create_server

# What ``pointbridge run`` uses, so a test meets the same request concurrency.
SERVER_THREADS = 8
LOOP_TIMEOUT = 0.05
# Client threads of ``released_together``: more than the server's, so requests queue there.
CLIENT_THREADS = 24

T = TypeVar("T")


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


def released_together(
    calls: list[Callable[[requests.Session], T]], threads: int = CLIENT_THREADS
) -> list[T]:
    """Each call's answer, the calls run on ``threads`` client threads released at once by
    one event (no sleep decides who goes first), each thread with its own keep-alive
    connection, as a shop system's HTTP pool has."""
    go = threading.Event()
    local = threading.local()

    def run(call: Callable[[requests.Session], T]) -> T:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        go.wait(timeout=60)
        return call(local.session)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(run, call) for call in calls]
        go.set()
        return [future.result() for future in futures]
