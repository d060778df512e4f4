"""Host configuration: environment variables and the optional TOML file.

Environment: ``POINTBRIDGE_DATABASE_URL``, ``POINTBRIDGE_SECRET_KEY``, ``POINTBRIDGE_CONFIG``,
``POINTBRIDGE_PLUGINS``, ``POINTBRIDGE_PUBLIC_URL``, ``POINTBRIDGE_INSTANCE``,
``POINTBRIDGE_METRICS_TOKEN``. The TOML file's
``[pointbridge]`` table holds the rest; its ``[integrations.<name>]`` tables declare
integrations, with secrets written as ``${ENV_VAR}``.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from platformdirs import user_data_dir

from pointbridge.contract.errors import PointbridgeError
from pointbridge.kit.setting_fields import is_web_address


class ConfigError(PointbridgeError):
    pass


# Platforms cannot reach it: `pointbridge run` warns when integrations rely on it.
DEFAULT_PUBLIC_URL = "http://127.0.0.1:5000"

_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(value: Any) -> Any:
    """Replace ``${NAME}`` with the environment variable, recursively; missing ones fail."""
    if isinstance(value, str):

        def lookup(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise ConfigError(f"The config refers to ${{{name}}}, which is not set.")
            return os.environ[name]

        return _ENV_REFERENCE.sub(lookup, value)
    if isinstance(value, dict):
        return {key: expand_env(item) for key, item in value.items()}
    if isinstance(value, list):
        return [expand_env(item) for item in value]
    return value


def instance_folder() -> Path:
    """``POINTBRIDGE_INSTANCE``, else the user's data folder (``~/.local/share/pointbridge``
    on Linux): one place whichever folder a command runs in."""
    return Path(os.environ.get("POINTBRIDGE_INSTANCE") or user_data_dir("pointbridge")).resolve()


@dataclass
class Settings:
    instance_path: Path
    database_url: str
    secret_key: str | None = None
    # When set, /metrics wants it as a bearer token; unset, /metrics is open.
    metrics_token: str | None = None
    public_url: str = DEFAULT_PUBLIC_URL
    referral_base_url: str | None = None
    # The shop's page that /r/<code> redirects a referred visitor to, the code in its query.
    referral_landing_url: str | None = None
    points_validity_days: int | None = None
    expiry_hour: int = 2
    expiry_timezone: str = "Europe/Prague"
    # The shop's clock, for the dates written to platforms; unset, the expiry job's.
    timezone: str | None = None
    max_attempts: int = 12
    # The shop's tier ids, lowest first: what tells tier-changed's direction up from down.
    tier_order: list[str] = field(default_factory=list)
    integrations: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in ("timezone", "expiry_timezone"):
            name = getattr(self, key)
            try:
                if name is not None:
                    ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                raise ConfigError(
                    f"[pointbridge] {key} = {name!r} is no IANA time zone; write one like "
                    '"Europe/Prague".'
                ) from None
        if not isinstance(self.tier_order, list) or not all(
            isinstance(tier, str | int) for tier in self.tier_order
        ):
            raise ConfigError(
                '[pointbridge] tier_order is the tier ids lowest first, e.g. ["1", "2", "3"].'
            )
        self.tier_order = [str(tier) for tier in self.tier_order]
        landing = self.referral_landing_url
        if landing is not None and not is_web_address(landing):
            raise ConfigError(
                f"[pointbridge] referral_landing_url = {landing!r} is no web address; write "
                'one like "https://shop.example.com/referral".'
            )

    @property
    def shop_timezone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone or self.expiry_timezone)

    @property
    def referral_prefix(self) -> str:
        return self.referral_base_url or self.public_url.rstrip("/") + "/r/"

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        instance = instance_folder()
        values: dict[str, Any] = {
            "instance_path": instance,
            "database_url": os.environ.get("POINTBRIDGE_DATABASE_URL")
            or f"sqlite:///{instance / 'pointbridge.sqlite3'}",
            "secret_key": os.environ.get("POINTBRIDGE_SECRET_KEY") or None,
            "metrics_token": os.environ.get("POINTBRIDGE_METRICS_TOKEN") or None,
        }
        config_path = os.environ.get("POINTBRIDGE_CONFIG")
        if config_path:
            values.update(load_config_file(Path(config_path)))
        if os.environ.get("POINTBRIDGE_PUBLIC_URL"):
            values["public_url"] = os.environ["POINTBRIDGE_PUBLIC_URL"]
        values.update(overrides)
        return cls(**values)


_HOST_KEYS = {
    "public_url",
    "referral_base_url",
    "referral_landing_url",
    "points_validity_days",
    "expiry_hour",
    "expiry_timezone",
    "timezone",
    "max_attempts",
    "tier_order",
}


def load_config_file(path: Path) -> dict[str, Any]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"POINTBRIDGE_CONFIG names {path}, which does not exist.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    host = raw.get("pointbridge", {})
    unknown = set(host) - _HOST_KEYS
    if unknown:
        raise ConfigError(
            f"{path}: unknown keys in [pointbridge]: {', '.join(sorted(unknown))} "
            f"(known: {', '.join(sorted(_HOST_KEYS))})"
        )
    return {**host, "integrations": expand_env(raw.get("integrations", {}))}
