"""The end-to-end stories every platform plugin must pass, through the whole host.

``PluginContract`` calls a plugin's hooks one at a time; these stories run the real host around
it (``pointbridge.testing.e2e.Pointbridge``: REST API, CLI, outbox, worker, exporter, over real
HTTP) against the plugin's fake platform served by ``FakeServer``, and check what ends on the
platform. Every fault is planned (``FakeServer.fail_next``), never produced by timing, so a slow
machine meets exactly the faults a fast one does. A plugin subclasses ``PluginStories`` in a
``Test…`` class with the adapter ``PluginContract`` takes (``fake``, ``server_options``,
``settings``) and ``points``, what the fake holds for an e-mail::

    class TestMyPlatformStories(PluginStories):
        platform_name = "myplatform"
        ...  # fake() and settings(url), as for PluginContract

        def points(self, account, email):
            contact = account.contacts.get(email)
            return None if contact is None else int(contact["points"])

A platform that takes events also fills in ``credit_balances``, and each credit event is then
checked to arrive once, in order. ``refused_credentials`` (the contract's: settings the fake
refuses) lets a story add the integration with wrong credentials and then correct them.

The stories run with the platform's real pacing; a platform whose declared budget would make
them slow (Dotdigital's 35 calls a minute) sets ``rate_limit`` to the same budget, faster.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import select

from pointbridge.delivery.export_pages import ExportRound, Page
from pointbridge.delivery.exports import Exporter, Progress, queue_export
from pointbridge.kit import ratelimit
from pointbridge.kit.ratelimit import RateLimit
from pointbridge.plugins import PluginHost, RegisteredPlatform
from pointbridge.storage.models import ExportJob, ExportStatus
from pointbridge.testing.contract import PluginContract
from pointbridge.testing.e2e import Pointbridge
from pointbridge.testing.server import FakeServer, Throttled

NAME = "shop"
SHOPPERS = 12
EXPORTED = 10_001
# Story 3 exports in pages this small, so a few dozen customers make several pages.
SMALL_PAGE = 10
_real_pacer_for = ratelimit.pacer_for
# Where platforms' 429s say how long to wait (Splio: RateLimit-Reset; Dotdigital:
# x-ratelimit-reset): a 429 without them leaves the wait to the host.
WAIT_HEADERS = frozenset({"retry-after", "ratelimit-reset", "x-ratelimit-reset"})


@dataclass(frozen=True)
class Shop:
    """A running host with the integration ``NAME`` installed against the fake platform."""

    pb: Pointbridge
    server: FakeServer
    account: Any
    accepted: Counter[str]  # e-mail -> push_contact calls that took the contact


def count_accepted(host: PluginHost, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Count, by e-mail, the contacts each ``push_contact`` call returned without a failure
    for: what the platform took, however many times a refused or dropped call was retried."""
    accepted: Counter[str] = Counter()
    call = host.call

    def counting(hook: str, platform_name: str, **kwargs: Any) -> Any:
        result = call(hook, platform_name, **kwargs)
        if hook == "push_contact":
            failed = {failure.key for failure in result or []}
            accepted.update(c.email for c in kwargs["contacts"] if c.customer_id not in failed)
        return result

    monkeypatch.setattr(host, "call", counting)
    return accepted


def naming_no_wait(throttled: Callable[[float], Throttled] | None) -> Callable[[float], Throttled]:
    """The platform's own 429 (a bare one when the fake has none) without its wait headers."""

    def respond(wait: float) -> Throttled:
        if throttled is None:
            return 429, {}, b""
        status, headers, body = throttled(wait)
        kept = {key: value for key, value in headers.items() if key.lower() not in WAIT_HEADERS}
        return status, kept, body

    return respond


def work_until_exported(pb: Pointbridge, timeout: float = 60.0) -> None:
    """Run the worker, as ``pointbridge run`` does, until the integration's exports have
    finished: it sends their pages whenever no live change is due. No command is run."""
    integration_id = pb.integration(NAME).id
    deadline = time.monotonic() + timeout
    while True:
        with pb.services.db.read() as session:
            statuses = set(
                session.scalars(
                    select(ExportJob.status).where(ExportJob.integration_id == integration_id)
                )
            )
        if statuses == {ExportStatus.FINISHED}:
            return
        assert time.monotonic() < deadline, f"exports not finished in {timeout}s: {statuses}"
        result = pb.worker.run_once()
        if not (result.delivered or result.failed):
            time.sleep(0.05)


class PluginStories:
    """Subclass as ``Test<Platform>Stories`` and fill in the adapter methods."""

    platform_name: ClassVar[str]
    # The platform's budget for the stories, when its declared one would make them slow.
    rate_limit: ClassVar[RateLimit | None] = None
    # Customers in the big export: a platform with no batch endpoint (one request a customer)
    # may export fewer, as long as it is several pages.
    export_size: ClassVar[int] = EXPORTED

    # The adapter: PluginContract's (the same methods, meaning the same), plus points.
    fake = PluginContract.fake
    server_options = PluginContract.server_options
    settings = PluginContract.settings
    refused_credentials = PluginContract.refused_credentials

    def points(self, account: Any, email: str) -> int | None:
        """The points balance the fake holds for this e-mail; None when it has no contact."""
        raise NotImplementedError

    def credit_balances(self, account: Any, email: str) -> list[int] | None:
        """The balance each credit event the fake got for this e-mail carries, oldest first;
        None for a platform that takes no events."""
        return None

    # Fixtures -------------------------------------------------------------------------------

    @pytest.fixture(autouse=True)
    def real_pacing(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # A plugin's conftest may record pacing for its unit tests; the host paces for real.
        monkeypatch.setattr("pointbridge.kit.ratelimit.pacer_for", _real_pacer_for)

    @pytest.fixture
    def shop(
        self, tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> Iterator[Shop]:
        with self.running(tmp_path, database_url, monkeypatch) as shop:
            yield shop

    @contextmanager
    def running(
        self,
        tmp_path: Path,
        database_url: str,
        monkeypatch: pytest.MonkeyPatch,
        *,
        existing: int = 0,
        refused: Mapping[str, Any] | None = None,
        quiet_429: bool = False,
        **platform_changes: Any,
    ) -> Iterator[Shop]:
        """A host whose platform is changed by ``platform_changes`` (and ``rate_limit``), with
        ``existing`` customers already in the shop, and the integration added and installed
        against a fresh fake account: with the ``refused`` credentials, added and failing.
        ``quiet_429``: the fake's planned 429s say no wait."""
        host = self._host(platform_changes)
        app, account = self.fake()
        options = dict(self.server_options())
        if quiet_429:
            options["throttled"] = naming_no_wait(options.get("throttled"))
        with (
            FakeServer(app, **options) as server,
            Pointbridge(tmp_path, database_url=database_url, host=host) as pb,
        ):
            if existing:
                pb.seed_customers(existing)
            settings = {**self.settings(server.url), **(refused or {})}
            pb.add_integration(NAME, self.platform_name, settings, exit_code=1 if refused else 0)
            server.clear()
            yield Shop(pb, server, account, count_accepted(host, monkeypatch))

    def _host(self, changes: dict[str, Any]) -> PluginHost:
        host = PluginHost()
        registered = host.registered(self.platform_name)
        if self.rate_limit is not None:
            changes = {"rate_limit": self.rate_limit, **changes}
        host.platforms[self.platform_name] = RegisteredPlatform(
            replace(registered.platform, **changes), registered.plugin
        )
        return host

    def assert_exact(self, shop: Shop) -> None:
        """Every customer's balance is on the platform, nothing waits, nothing is dead."""
        assert shop.pb.pending() == 0
        assert shop.pb.dead() == 0
        wrong = {
            email: (balance, on_platform)
            for email, balance in shop.pb.balances().items()
            if (on_platform := self.points(shop.account, email)) != balance
        }
        sample = dict(islice(wrong.items(), 5))
        assert not wrong, f"{len(wrong)} customers differ, (balance, on the platform): {sample}"

    # The stories ----------------------------------------------------------------------------

    def test_story_a_busy_shop_meets_throttling_and_faults_and_ends_exact(self, shop: Shop) -> None:
        pb, server = shop.pb, shop.server
        customers = [pb.create_customer(f"shopper{n}@example.com") for n in range(SHOPPERS)]
        pb.deliver()
        balances: defaultdict[str, list[int]] = defaultdict(list)

        def credit(customer: dict[str, Any], points: int, reason: str) -> None:
            balances[customer["email"]].append(
                pb.transaction(customer["id"], points, reason)["balance"]
            )

        # Another tool on the account used up the budget: the next request meets a 429.
        mark = pb.last_outbox_id()
        server.fail_next(1, "429", retry_after=1)
        for n, customer in enumerate(customers):
            credit(customer, 5 + n, "order")
        pb.deliver()
        assert [r.status for r in server.requests].count(429) == 1
        assert set(pb.attempts(after=mark)) == {1}, "a 429 must cost no attempt"

        # Then a round of changes meets a 503, the next a 500, the last a dropped connection:
        # one round each, as faults in a row would rightly make a plugin back off for long.
        for fault, status in (("503", 503), ("500", 500), ("drop", 0)):
            server.fail_next(1, fault)
            for customer in customers:
                credit(customer, 3, "review")
            for customer in customers[::3]:
                pb.set_pin(customer["id"])
            credit(customers[1], -4, "manual")
            pb.deliver()
            assert [r.status for r in server.requests].count(status) == 1
        pb.update_customer(customers[0]["id"], registered=True, tier_id="gold", tier_name="Gold")
        pb.deliver()

        assert pb.integration(NAME).status == "active"
        self.assert_exact(shop)
        for email, sent in balances.items():
            got = self.credit_balances(shop.account, email)
            # Each credit event exactly once (a refused or dropped request was never
            # processed), in the order it happened.
            assert got is None or got == sent, email

    def test_story_a_big_export_stopped_and_resumed_sends_each_customer_once(
        self, shop: Shop
    ) -> None:
        pb, server = shop.pb, shop.server
        platform = pb.services.host.platform(self.platform_name)
        page = platform.max_batch
        # The stop comes after two pages; by then up to max_in_flight + 1 more may be on their
        # way, and they are finished: enough pages that some are left for the resume.
        size = max(self.export_size, (platform.max_in_flight + 4) * page + 1)
        pb.seed_customers(size, points=10)
        emails = [f"customer{n}@example.com" for n in range(size)]

        # A first run stopped after two pages (a crash, a deploy, Ctrl-C)...
        job = queue_export(pb.services.db, pb.integration(NAME).id)
        stop = threading.Event()
        seen: list[Progress] = []

        def stop_after_two_pages(progress: Progress) -> None:
            seen.append(progress)
            if progress.done >= 2 * page:
                stop.set()

        services = pb.services
        exporter = Exporter(services.db, services.integrations, services.outbox, owner="first")
        first = exporter.run(job.id, stop=stop, on_progress=stop_after_two_pages)
        # Progress after each page recorded (pages answered out of order are recorded together).
        done = [p.done for p in seen]
        assert done[0] == 0 and done == sorted(done) and {p.total for p in seen} == {size}
        assert all(d % page == 0 for d in done) and len(set(done)) >= 2
        # The pages at the platform when the stop came were finished, not cut in half, and
        # the job says how far it got.
        assert first.status == "running"
        assert first.done % page == 0 and 2 * page <= first.done < size
        on_platform = [email for email in emails if self.points(shop.account, email) is not None]
        assert len(on_platform) == first.done

        # ...meanwhile the shop sells, to a customer exported and to one not yet...
        changed = [emails[0], emails[-1]]
        for email in changed:
            pb.transaction(pb.customer_id(email), 5, "order")

        # ...and `pointbridge export` continues where it stopped (the sales go first), through
        # a 429.
        server.fail_next(1, "429", retry_after=1)
        out = pb.cli("export", NAME)
        assert f"resuming export {job.id} after {first.done} customers" in out
        assert f"export {job.id} finished: {size} customers sent, 0 refused" in out
        assert f"finished: {size}/{size}" in pb.cli("export", NAME, "--status")
        # A platform that sends one request a customer hands what the 429 stopped back to the
        # outbox; live delivery sends it.
        pb.deliver()

        # Each customer taken once by the export, the two changed once more by live delivery.
        assert shop.accepted == Counter(emails) + Counter(changed)
        self.assert_exact(shop)

    def test_story_changes_made_while_an_export_runs_end_exact(
        self, tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with self.running(tmp_path, database_url, monkeypatch, max_batch=SMALL_PAGE) as shop:
            pb = shop.pb
            pb.seed_customers(3 * SMALL_PAGE - 1, points=10)
            customer_id = {email: pb.customer_id(email) for email in pb.balances()}
            next_page = ExportRound.next_page
            turns: list[int] = []

            def shop_sells_then_read(export: ExportRound, *args: Any) -> Page | None:
                # Just before each page is read, under the sending lease: a credit to a
                # customer of that page and one to a customer of the page sent before, both
                # left to live delivery, which sends them after the page.
                turns.append(len(turns))
                first = (len(turns) - 1) * SMALL_PAGE
                upcoming = f"customer{first + SMALL_PAGE // 2}@example.com"
                if upcoming in customer_id:
                    pb.transaction(customer_id[upcoming], 50 + len(turns), "order")
                sent = f"customer{first - 1}@example.com"
                if sent in customer_id:
                    pb.transaction(customer_id[sent], 7, "review")
                return next_page(export, *args)

            monkeypatch.setattr(ExportRound, "next_page", shop_sells_then_read)
            out = pb.cli("export", NAME)
            assert f"{3 * SMALL_PAGE - 1} customers sent, 0 refused" in out
            assert len(turns) >= 3
            pb.deliver()
            self.assert_exact(shop)

    def test_story_the_first_activation_sends_the_customers_already_there_by_itself(
        self, tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with self.running(tmp_path, database_url, monkeypatch, existing=SHOPPERS) as shop:
            pb = shop.pb
            assert pb.cli("export", NAME, "--status").startswith("export 1 queued")
            work_until_exported(pb)
            assert f"finished: {SHOPPERS}/{SHOPPERS}" in pb.cli("export", NAME, "--status")
            assert shop.accepted == Counter(pb.balances().keys())  # each once
            self.assert_exact(shop)

    def test_story_corrected_credentials_resume_delivery_of_what_waited(
        self, tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        refused = self.refused_credentials()
        with self.running(tmp_path, database_url, monkeypatch, refused=refused) as shop:
            pb = shop.pb
            customer = pb.create_customer("jana@example.com")
            pb.transaction(customer["id"], 120, "order")
            pb.worker.run_once()
            assert pb.integration(NAME).status == "failing"
            assert pb.pending(NAME) > 0 and self.points(shop.account, "jana@example.com") is None

            good = self.settings(shop.server.url)
            out = pb.cli("integrations", "set", NAME, *(f"{key}={good[key]}" for key in refused))
            # Setting the credentials installs at once: no `integrations install` to run.
            assert f"{NAME} is active" in out
            pb.deliver()
            assert pb.integration(NAME).status == "active"
            self.assert_exact(shop)

    def test_story_a_429_that_names_no_wait_costs_about_a_second(
        self, tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with self.running(tmp_path, database_url, monkeypatch, quiet_429=True) as shop:
            pb, server = shop.pb, shop.server
            customer = pb.create_customer("jana@example.com")
            pb.deliver()
            server.clear()

            # Were the wait headers left in, this 429 would say 30 s.
            server.fail_next(1, "429", retry_after=30)
            pb.transaction(customer["id"], 120, "order")
            started = datetime.now(UTC)
            pb.worker.run_once()
            finished = datetime.now(UTC)
            assert [r.status for r in server.requests] == [429]
            resume_at = pb.integration(NAME).resume_at
            assert resume_at is not None
            # A second from the 429, which came between started and finished (however long
            # the call took on this machine), not a guessed 30 s.
            second = timedelta(seconds=1)
            assert started + second <= resume_at <= finished + second
            pb.deliver()
            self.assert_exact(shop)


__all__ = ["PluginStories", "Shop", "count_accepted"]
