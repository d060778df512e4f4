"""Fixtures for the console's browser tests: Debian's chromium driven by Playwright, and the
app served by waitress on a loopback port against the ``database_url`` fixture's databases."""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, expect, sync_playwright

from pointbridge.access.users import create_user
from pointbridge.delivery.background import start_background
from pointbridge.services import Services
from pointbridge.testing.served import served

CHROMIUM = Path("/usr/bin/chromium")
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "correct horse battery staple"

SCREENSHOTS = Path(__file__).parent / "screenshots"
# Playwright's 5 s default for an expectation is a speed test on a busy box (Swagger UI's
# bundle alone took longer on one shared core): waiting longer costs nothing when it passes.
expect.set_options(timeout=30_000)

LogIn = Callable[..., None]
Shoot = Callable[[str], None]
Eventually = Callable[..., None]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        why = f"{CHROMIUM} is missing: `make install` installs it (apt-get install -y chromium)"
        if not shutil.which("apt-get"):
            why += "; this machine has no apt-get"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    # Debian's browser, never one Playwright downloads.
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield launched
        launched.close()


@pytest.fixture
def console(app: Flask, services: Services) -> Iterator[str]:
    """The base URL of the served app, with one admin who can log in."""
    create_user(services.db, ADMIN_EMAIL, ADMIN_PASSWORD)
    with served(app) as base:
        yield base


@pytest.fixture
def page(browser: Browser, console: str) -> Iterator[Page]:
    # The copy buttons write to the clipboard; the tests read it back.
    context = browser.new_context(
        base_url=console, permissions=["clipboard-read", "clipboard-write"]
    )
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture
def shoot(page: Page, request: pytest.FixtureRequest) -> Shoot:
    """Save the page as it looks now under SCREENSHOTS (CI keeps the folder as an artifact)."""

    def save(what: str) -> None:
        test = re.sub(r"[^\w.]+", "-", request.node.name).strip("-")
        name = f"{test}-{what}"
        page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)

    return save


@pytest.fixture
def start_worker(services: Services) -> Iterator[Callable[[], None]]:
    """Starts the delivery worker that ``pointbridge run`` runs beside the app, when the test
    is ready for it; stopped at the end."""
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start() -> None:
        threads.extend(start_background(services, stop, idle=0.05))

    yield start
    stop.set()
    for thread in threads:
        thread.join(timeout=30)


def _eventually(condition: Callable[[], object], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def eventually() -> Eventually:
    """Waits for the worker's effect on a fake platform (pages have Playwright's waiting)."""
    return _eventually


@pytest.fixture
def log_in(page: Page) -> LogIn:
    def fill(password: str = ADMIN_PASSWORD, email: str = ADMIN_EMAIL) -> None:
        page.goto("/admin/login")
        page.get_by_label("E-mail").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()

    return fill
