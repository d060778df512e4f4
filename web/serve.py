"""Serving the API in production: one process (waitress), or several web processes (gunicorn)
beside one process that runs the background work (delivery worker, exports, scheduler).

Python runs one thread at a time per process, so one process serves on one core whatever its
thread count. ``pointbridge run --workers N`` starts gunicorn's master with N web processes
(its ``gthread`` worker: N processes x ``--threads`` threads) as a child, and keeps the delivery
worker and the nightly scheduler in its own process: started once, whatever N is, and never
copied into a fork (gunicorn forks each web process from a master that runs no threads).
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from types import FrameType

from flask import Flask

from pointbridge.delivery.background import start_background, tune_garbage_collector
from pointbridge.delivery.metrics import MULTIPROCESS_ENV, share_with_other_processes
from pointbridge.scheduler import start_scheduler
from pointbridge.services import Services
from pointbridge.web import create_app

log = logging.getLogger(__name__)

# On SQLite the web processes wake the delivery worker through this datagram socket, as the
# embedded worker of a single process is woken in-process (PostgreSQL has NOTIFY instead).
WAKE_SOCKET_ENV = "POINTBRIDGE_WAKE_SOCKET"
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def create_web_app() -> Flask:
    """The app of one gunicorn web process: API, webhooks and /metrics, no background work."""
    app = create_app()
    svc: Services = app.extensions["pointbridge"]
    path = os.environ.get(WAKE_SOCKET_ENV)
    if path and not svc.db.is_postgres:
        threading.Thread(
            target=forward_wakeups,
            args=(svc.outbox.wakeup, path),
            name="pointbridge-wake-forwarder",
            daemon=True,
        ).start()
    tune_garbage_collector()
    return app


def forward_wakeups(wakeup: threading.Event, path: str) -> None:
    """Pass each commit that queued outbox rows on to the worker listening at ``path``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        # A full queue already holds a wake-up; a worker not listening polls anyway.
        sock.setblocking(False)
        while True:
            wakeup.wait()
            wakeup.clear()
            with suppress(OSError):
                sock.sendto(b"w", path)


@contextmanager
def wake_socket(wakeup: threading.Event) -> Iterator[str]:
    """A socket, readable by its owner only, whose every datagram sets ``wakeup``."""
    folder = Path(tempfile.mkdtemp(prefix="pointbridge-"))
    path = str(folder / "wake")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)

    def receive() -> None:
        with suppress(OSError):  # the socket closed at shutdown
            while sock.recv(16):
                wakeup.set()

    threading.Thread(target=receive, name="pointbridge-wake-socket", daemon=True).start()
    try:
        yield path
    finally:
        sock.close()
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def background_work(svc: Services, *, worker: bool) -> Iterator[None]:
    """The scheduler and (unless ``worker`` is False) the delivery worker and the export
    runner, until the block ends; the worker then finishes the batch it is sending."""
    stop = threading.Event()
    threads = start_background(svc, stop, wakeup=svc.outbox.wakeup) if worker else []
    scheduler = start_scheduler(svc)
    log.info("background work runs in process %d", os.getpid())
    try:
        yield
    finally:
        log.info("stopping: the worker finishes its current batch")
        stop.set()
        # A running expiry job is left to the next start's catch-up: it is idempotent.
        scheduler.shutdown(wait=False)
        for thread in threads:
            thread.join()


def serve_in_process(
    svc: Services, app: Flask, *, host: str, port: int, threads: int, worker: bool
) -> None:
    """Everything in this process, as ``pointbridge run`` always did: waitress and the
    background work. SIGTERM stops it like Ctrl-C: requests in progress get five seconds."""
    import waitress

    # waitress's loop closes the server on KeyboardInterrupt.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with background_work(svc, worker=worker):
        waitress.serve(app, host=host, port=port, threads=threads)


def gunicorn_command(host: str, port: int, workers: int, threads: int) -> list[str]:
    """The gunicorn command line for the web processes alone (no background work)."""
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--worker-class",
        "gthread",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--bind",
        bind,
        # gunicornc's socket defaults to one path per user: a second server would take it over.
        "--no-control-socket",
        f"{__name__}:create_web_app()",
    ]


def _dying_with_parent() -> Callable[[], None] | None:
    """On Linux, what has the kernel send gunicorn SIGTERM when ``pointbridge run`` dies, even
    killed outright: its web processes must not go on taking changes no worker delivers."""
    if sys.platform != "linux":
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork, not in it
    return lambda: prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def serve_with_gunicorn(
    svc: Services, *, host: str, port: int, workers: int, threads: int, worker: bool
) -> int:
    """gunicorn's web processes in a child, the background work here, once; returns
    gunicorn's exit status. SIGTERM is passed on to gunicorn, whose web processes finish the
    requests they are serving; then the delivery worker finishes its batch."""
    env = dict(os.environ)
    with ExitStack() as stack:
        if worker and not svc.db.is_postgres:
            env[WAKE_SOCKET_ENV] = stack.enter_context(wake_socket(svc.outbox.wakeup))
        if worker:
            figures = tempfile.mkdtemp(prefix="pointbridge-metrics-")
            stack.callback(shutil.rmtree, figures, ignore_errors=True)
            share_with_other_processes(figures)
            env[MULTIPROCESS_ENV] = figures
        # Started before the background threads: a fork that runs code before its exec must
        # not copy a lock some other thread holds.
        server = subprocess.Popen(
            gunicorn_command(host, port, workers, threads),
            env=env,
            preexec_fn=_dying_with_parent(),
        )
        stack.callback(server.terminate)  # does nothing once gunicorn has exited
        stack.enter_context(background_work(svc, worker=worker))

        def pass_on(signum: int, _frame: FrameType | None) -> None:
            server.send_signal(signum)

        # Ctrl-C reaches gunicorn too (same process group); passing it on again is harmless.
        signal.signal(signal.SIGTERM, pass_on)
        signal.signal(signal.SIGINT, pass_on)
        status = server.wait()
    return status
