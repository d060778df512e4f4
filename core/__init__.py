"""pointbridge core: the loyalty domain, the plugin contract and reliable delivery.

Plugins import what they need from here::

    from core import hookimpl, Platform, Contact, AuthError
"""

from core.contact import Contact, MembershipState, format_datetime, loyalty_fields
from core.errors import (
    AuthError,
    ChoiceRequired,
    ConfigurationError,
    DeliveryError,
    PermanentError,
    RateLimited,
    TransientError,
    WebhookRejected,
)
from core.events import Event, EventType
from core.hookspecs import hookimpl
from core.platform import (
    Capability,
    InstallResult,
    Integration,
    ItemFailure,
    ListSubscription,
    Platform,
    RateLimit,
    WebhookAction,
    WebhookRequest,
)

__all__ = [
    "AuthError",
    "Capability",
    "ChoiceRequired",
    "ConfigurationError",
    "Contact",
    "DeliveryError",
    "Event",
    "EventType",
    "InstallResult",
    "Integration",
    "ItemFailure",
    "ListSubscription",
    "MembershipState",
    "PermanentError",
    "Platform",
    "RateLimit",
    "RateLimited",
    "TransientError",
    "WebhookAction",
    "WebhookRejected",
    "WebhookRequest",
    "format_datetime",
    "hookimpl",
    "loyalty_fields",
]
