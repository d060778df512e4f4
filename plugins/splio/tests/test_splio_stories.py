"""Splio through the whole host: the stories every plugin must pass
(pointbridge.testing.stories)."""

from __future__ import annotations

from typing import Any

from pointbridge_splio.fake import FakeSplio, create_app, error_body, throttled

from pointbridge.testing.stories import PluginStories

KEY = "splio-stories-key"


class TestSplioStories(PluginStories):
    platform_name = "splio"

    def fake(self) -> tuple[Any, FakeSplio]:
        universe = FakeSplio(api_keys={KEY})
        return create_app(universe), universe

    def server_options(self) -> dict[str, Any]:
        return {"error_body": error_body, "throttled": throttled}

    def settings(self, url: str) -> dict[str, str]:
        return {"api_url": url, "api_key": KEY}

    def points(self, universe: FakeSplio, email: str) -> int | None:
        if email not in universe.contacts:
            return None
        return int(universe.values(email)["ellity_points_balance"])
