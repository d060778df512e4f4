"""Field names made of the integration's prefix and a suffix, under the platform's naming rule.

The admin chooses the field prefix (default ``ellity_``); platforms limit what a field name may
hold. ``prefixed_names`` builds the names and refuses a prefix that cannot work before install
calls the platform, telling the admin what to change::

    names = prefixed_names(
        integration.field_prefix,
        {"points": "POINTS", "tier_name": "TIER_NAME"},
        platform="MyPlatform",
        max_length=20,
        allowed=re.compile(r"[A-Za-z0-9_]*"),
        allowed_text="letters, digits and '_'",
        case=str.upper,  # the platform shows names in upper case
    )  # {"points": "ELLITY_POINTS", "tier_name": "ELLITY_TIER_NAME"}
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from pointbridge.contract.errors import PermanentError

_EXAMPLE = "(e.g. 'ellity_')"


def prefixed_names(
    prefix: str,
    suffixes: Mapping[str, str],
    *,
    platform: str,
    max_length: int | None = None,
    allowed: re.Pattern[str] | None = None,
    allowed_text: str = "",
    case: Callable[[str], str] = str,
) -> dict[str, str]:
    """key -> ``case(prefix) + suffix``. A ``PermanentError`` says how to fix a prefix with a
    character ``allowed`` does not match (``allowed_text`` says which ones it takes), or one
    that makes the longest name exceed ``max_length``."""
    normalized = case(prefix or "")
    if allowed is not None and not allowed.fullmatch(normalized):
        raise PermanentError(
            f"The field prefix {prefix!r} cannot be used in {platform} field names, which "
            f"allow only {allowed_text}. Change the integration's field prefix {_EXAMPLE}."
        )
    longest = normalized + max(suffixes.values(), key=len, default="")
    if max_length is not None and len(longest) > max_length:
        room = max_length - (len(longest) - len(normalized))
        raise PermanentError(
            f"The field prefix {prefix!r} is too long for {platform}: field names are at most "
            f"{max_length} characters and {longest} would be {len(longest)}. Shorten the "
            f"integration's field prefix to at most {room} characters {_EXAMPLE}."
        )
    return {key: normalized + suffix for key, suffix in suffixes.items()}
