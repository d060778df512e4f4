"""A platform plugin written inside a test, for host tests that need a platform behaving in
one particular way (throttling half a call, crashing in a webhook) without a fake server."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from marshmallow import Schema

from pointbridge.contract.hookspecs import hookimpl
from pointbridge.contract.platform import Capability, Integration, Platform


class InProcessPlatform:
    """Subclass, set ``name`` (and ``settings_schema``, ``capabilities`` or ``max_batch`` if the
    test needs them), implement the hooks the test exercises; ``install`` succeeds and does nothing
    unless overridden. Register with ``services.host.register(plugin, plugin.name)``."""

    name: ClassVar[str]
    settings_schema: ClassVar[type[Schema]] = Schema
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    max_batch: ClassVar[int] = 500

    @hookimpl
    def register_platforms(self, register: Callable[[Platform], None]) -> None:
        register(
            Platform(
                name=self.name,
                title=self.name.title(),
                settings_schema=self.settings_schema,
                capabilities=self.capabilities,
                max_batch=self.max_batch,
            )
        )

    @hookimpl
    def install(self, integration: Integration) -> None:
        return None
