"""pointbridge core: the loyalty domain, the plugin contract and reliable delivery.

Plugins import what they need from here::

    from pointbridge import hookimpl, Platform, Contact, AuthError
"""

from pointbridge.contract.contact import (
    Contact,
    MembershipState,
    format_datetime,
    loyalty_fields,
    shop_time,
)
from pointbridge.contract.errors import (
    AuthError,
    ChoiceRequired,
    ConfigurationError,
    DeliveryError,
    PermanentError,
    RateLimited,
    TransientError,
    WebhookRejected,
)
from pointbridge.contract.events import Event, EventType
from pointbridge.contract.hookspecs import hookimpl
from pointbridge.contract.platform import (
    Capability,
    InstallResult,
    Integration,
    ItemFailure,
    ListSubscription,
    Platform,
    WebhookAction,
    WebhookRequest,
)
from pointbridge.kit.items import send_each, send_events
from pointbridge.kit.ratelimit import RateLimit

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
    "send_each",
    "send_events",
    "shop_time",
]
