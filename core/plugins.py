"""Plugin discovery and dispatch.

Plugins are found through the entry-point group ``pointbridge``. ``POINTBRIDGE_PLUGINS`` (a
comma list of entry-point names) restricts which load; set but empty loads none. Every hook call
for an integration goes to the one plugin that registered that integration's platform.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.metadata import Distribution, entry_points
from typing import Any

import pluggy

from pointbridge.contract import hookspecs
from pointbridge.contract.errors import PointbridgeError
from pointbridge.contract.platform import Platform

ENTRY_POINT_GROUP = "pointbridge"
DISPATCHED_HOOKS = ("install", "push_contact", "emit_event", "handle_webhook")


class UnknownPlatform(PointbridgeError):
    pass


@dataclass(frozen=True)
class LoadedPlugin:
    name: str
    module: object
    distribution: Distribution | None

    @property
    def version(self) -> str | None:
        return self.distribution.version if self.distribution else None

    @property
    def package(self) -> str | None:
        return self.distribution.metadata["Name"] if self.distribution else None


@dataclass(frozen=True)
class RegisteredPlatform:
    platform: Platform
    plugin: LoadedPlugin


def allowed_plugins_from_env() -> set[str] | None:
    raw = os.environ.get("POINTBRIDGE_PLUGINS")
    if raw is None:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


class PluginHost:
    """Owns the pluggy manager, the registered platforms and per-plugin hook callers."""

    def __init__(self, allowed: set[str] | None = None, *, discover: bool = True) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, LoadedPlugin] = {}
        self.platforms: dict[str, RegisteredPlatform] = {}
        self._callers: dict[tuple[str, str], Any] = {}
        if discover:
            self._discover(allowed)

    def _discover(self, allowed: set[str] | None) -> None:
        for entry_point in entry_points(group=ENTRY_POINT_GROUP):
            if allowed is not None and entry_point.name not in allowed:
                continue
            if entry_point.name in self.plugins:
                continue
            self.register(entry_point.load(), entry_point.name, entry_point.dist)

    def register(
        self, module: object, name: str, distribution: Distribution | None = None
    ) -> LoadedPlugin:
        """Register a plugin object and the platforms it declares."""
        self.pm.register(module, name=name)
        self.pm.check_pending()
        plugin = LoadedPlugin(name, module, distribution)
        self.plugins[name] = plugin
        self._caller_for(plugin, "register_platforms")(
            register=lambda platform: self._add_platform(platform, plugin)
        )
        return plugin

    def unregister(self, name: str) -> None:
        plugin = self.plugins.pop(name)
        self.pm.unregister(plugin.module)
        self.platforms = {k: v for k, v in self.platforms.items() if v.plugin is not plugin}
        self._callers = {k: v for k, v in self._callers.items() if k[0] != name}

    def _add_platform(self, platform: Platform, plugin: LoadedPlugin) -> None:
        existing = self.platforms.get(platform.name)
        if existing and existing.plugin is not plugin:
            raise PointbridgeError(
                f"Platform {platform.name!r} is registered by both {existing.plugin.name!r} "
                f"and {plugin.name!r}; restrict POINTBRIDGE_PLUGINS to one of them."
            )
        self.platforms[platform.name] = RegisteredPlatform(platform, plugin)

    def _caller_for(self, plugin: LoadedPlugin, hook_name: str) -> Any:
        key = (plugin.name, hook_name)
        if key not in self._callers:
            others = [p for p in self.pm.get_plugins() if p is not plugin.module]
            self._callers[key] = self.pm.subset_hook_caller(hook_name, remove_plugins=others)
        return self._callers[key]

    def platform(self, name: str) -> Platform:
        return self.registered(name).platform

    def registered(self, name: str) -> RegisteredPlatform:
        try:
            return self.platforms[name]
        except KeyError:
            known = ", ".join(sorted(self.platforms)) or "none"
            raise UnknownPlatform(
                f"No installed plugin provides platform {name!r} (installed: {known})."
            ) from None

    def call(self, hook_name: str, platform_name: str, **kwargs: Any) -> Any:
        """Call one of the dispatched hooks on the plugin that owns ``platform_name``."""
        if hook_name not in DISPATCHED_HOOKS:
            raise ValueError(f"{hook_name} is not a per-integration hook")
        return self._caller_for(self.registered(platform_name).plugin, hook_name)(**kwargs)

    def describe(self) -> list[dict[str, Any]]:
        """What ``pointbridge plugins`` prints: one entry per loaded plugin."""
        described = []
        for plugin in self.plugins.values():
            hooks = sorted(
                caller.name
                for caller in self.pm.get_hookcallers(plugin.module) or []
                if caller.name != "register_platforms"
            )
            described.append(
                {
                    "name": plugin.name,
                    "package": plugin.package,
                    "version": plugin.version,
                    "hooks": hooks,
                    "platforms": [
                        _describe_platform(r.platform)
                        for r in self.platforms.values()
                        if r.plugin is plugin
                    ],
                }
            )
        return described


def _describe_platform(platform: Platform) -> dict[str, Any]:
    return {
        "name": platform.name,
        "title": platform.title,
        "capabilities": sorted(platform.capabilities),
        "max_batch": platform.max_batch,
        "rate_limit": None
        if platform.rate_limit is None
        else f"{platform.rate_limit.calls}/{platform.rate_limit.per_seconds:g}s",
    }
