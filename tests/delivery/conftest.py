"""Fixtures of the delivery tests: the fake ESP plugin, its fake platform over real HTTP, a
whole pointbridge host, and subprocesses (workers, exports) that load the plugin the way a
real installation does, through the ``pointbridge`` entry-point group."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import select

from pointbridge.delivery.snapshots import load_contacts
from pointbridge.plugins import PluginHost
from pointbridge.storage.models import OutboxMessage
from pointbridge.testing import FakeServer
from pointbridge.testing.e2e import Pointbridge

PLUGIN_FILE = Path(__file__).with_name("delivery_fakeesp.py")
PLUGIN_MODULE = "delivery_fakeesp"
ENTRY_POINT = "fakeesp"
SECRET_KEY = "tests-only-secret-key"


@pytest.fixture(scope="session")
def fakeesp() -> ModuleType:
    """The plugin module, loaded from its file (tests/ is not a package on sys.path)."""
    if PLUGIN_MODULE in sys.modules:
        return sys.modules[PLUGIN_MODULE]
    spec = importlib.util.spec_from_file_location(PLUGIN_MODULE, PLUGIN_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class is being built.
    sys.modules[PLUGIN_MODULE] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def fakeesp_dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the plugin as an installed distribution, for PYTHONPATH.

    Only subprocesses get it: on the test process's own sys.path, every other test's
    ``PluginHost()`` would discover the fake platform too.
    """
    root = tmp_path_factory.mktemp("fakeesp-dist")
    shutil.copy(PLUGIN_FILE, root / PLUGIN_FILE.name)
    info = root / "pointbridge_delivery_fakeesp-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: pointbridge-delivery-fakeesp\nVersion: 0.1.0\n"
    )
    (info / "entry_points.txt").write_text(f"[pointbridge]\n{ENTRY_POINT} = {PLUGIN_MODULE}\n")
    return root


@pytest.fixture
def fakeesp_host(fakeesp: ModuleType) -> PluginHost:
    host = PluginHost(discover=False)
    host.register(fakeesp, ENTRY_POINT)
    return host


@pytest.fixture
def fake(fakeesp: ModuleType) -> Any:
    return fakeesp.FakeEsp()


@pytest.fixture
def fake_server(fake: Any, fakeesp: ModuleType) -> Iterator[FakeServer]:
    with FakeServer(fakeesp.create_app(fake)) as server:
        yield server


@pytest.fixture
def pb(tmp_path: Path, fakeesp_host: PluginHost) -> Iterator[Pointbridge]:
    with Pointbridge(tmp_path, host=fakeesp_host) as running:
        yield running


class Kit:
    """Helpers for the delivery tests (a fixture: test modules cannot import conftest)."""

    def __init__(self, fakeesp: ModuleType, dist: Path) -> None:
        self.fakeesp = fakeesp
        self.dist = dist

    @staticmethod
    def add_integration(
        pb: Pointbridge,
        name: str,
        server: FakeServer,
        *,
        platform: str = "fakeesp_small",
        api_key: str = "good",
        account: str | None = None,
        timeout: float = 0.3,
    ) -> str:
        """``pointbridge integrations add`` (which installs it) pointed at the fake."""
        settings = {
            "api_url": server.url,
            "api_key": api_key,
            "account": account or name,
            "timeout": timeout,
        }
        return pb.add_integration(name, platform, settings, exit_code=None)

    def expected_fields(
        self, pb: Pointbridge, customer_ids: Sequence[int]
    ) -> dict[str, dict[str, Any]]:
        """What the platform should hold for these customers: the database's snapshot."""
        with pb.services.db.transaction() as session:
            contacts = load_contacts(session, list(customer_ids), pb.settings.referral_prefix)
        # Through JSON, as the platform received them.
        return json.loads(
            json.dumps({c.email: self.fakeesp.contact_fields(c) for c in contacts.values()})
        )

    @staticmethod
    def outbox_rows(pb: Pointbridge, **where: Any) -> list[OutboxMessage]:
        with pb.services.db.transaction() as session:
            statement = select(OutboxMessage).order_by(OutboxMessage.id)
            for column, value in where.items():
                statement = statement.where(getattr(OutboxMessage, column) == value)
            return list(session.scalars(statement))

    @staticmethod
    def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
        """Poll ``condition`` until it is truthy; fail saying ``what`` did not happen."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
            time.sleep(0.05)

    @staticmethod
    def pointbridge_command() -> str:
        return str(Path(sys.executable).with_name("pointbridge"))

    def subprocess_env(self, pb: Pointbridge) -> dict[str, str]:
        """The environment of a ``pointbridge`` subprocess sharing ``pb``'s database."""
        return {
            **os.environ,
            "POINTBRIDGE_DATABASE_URL": pb.settings.database_url,
            "POINTBRIDGE_SECRET_KEY": SECRET_KEY,
            "POINTBRIDGE_INSTANCE": str(pb.settings.instance_path),
            "POINTBRIDGE_PLUGINS": ENTRY_POINT,
            # Referral links are built from it: the same snapshot as the test process's.
            "POINTBRIDGE_PUBLIC_URL": pb.settings.public_url,
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(self.dist), os.environ.get("PYTHONPATH")])
            ),
            "PYTHONUNBUFFERED": "1",
        }

    def spawn(self, args: Sequence[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            return subprocess.Popen(
                [self.pointbridge_command(), *args], env=env, stdout=out, stderr=subprocess.STDOUT
            )


@pytest.fixture
def kit(fakeesp: ModuleType, fakeesp_dist: Path) -> Kit:
    return Kit(fakeesp, fakeesp_dist)
