"""Splio against the cases and the end-to-end stories every plugin must pass
(pointbridge.testing.contract, pointbridge.testing.stories)."""

from __future__ import annotations

from typing import Any

from pointbridge_splio.fake import FakeSplio, create_app, error_body, throttled

from pointbridge.testing.contract import PluginContract
from pointbridge.testing.stories import PluginStories

API_KEY = "splio-contract-key"


class SplioAdapter:
    platform_name = "splio"

    def fake(self) -> tuple[Any, FakeSplio]:
        universe = FakeSplio(api_keys={API_KEY})
        return create_app(universe), universe

    def server_options(self) -> dict[str, Any]:
        return {"error_body": error_body, "throttled": throttled}

    def settings(self, url: str) -> dict[str, Any]:
        return {"api_url": url, "api_key": API_KEY}

    def refused_credentials(self) -> dict[str, Any]:
        return {"api_key": "not-the-key"}


class TestSplioContract(SplioAdapter, PluginContract):
    def stored(self, universe: FakeSplio, email: str) -> bool:
        return email in universe.contacts


class TestSplioStories(SplioAdapter, PluginStories):
    def points(self, universe: FakeSplio, email: str) -> int | None:
        if email not in universe.contacts:
            return None
        return int(universe.values(email)["ellity_points_balance"])
