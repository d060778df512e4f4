"""Errors a plugin raises so the host can decide what happens next.

The plugin classifies, the host decides: an ``AuthError`` pauses the integration, ``RateLimited``
waits, ``TransientError`` retries with backoff, ``PermanentError`` gives up on the one item.
Messages are shown to shop admins, so they say what to fix and never contain a secret.
"""

from __future__ import annotations

from collections.abc import Sequence


class PointbridgeError(Exception):
    """Base of every error pointbridge raises on purpose."""


class DeliveryError(PointbridgeError):
    """Something went wrong talking to an email platform."""


class ConfigurationError(DeliveryError):
    """The account needs an admin before anything more can be sent.

    A data field deleted on the platform, a contact limit reached, a prefix the platform
    rejects: the host pauses the integration (state ``failing``, the message shown to the admin)
    and keeps its rows waiting, instead of dead-lettering every contact.
    """


class AuthError(ConfigurationError):
    """The platform refused the credentials; retrying will not help until an admin fixes them."""


class RateLimited(DeliveryError):
    """The platform asked us to slow down; ``retry_after`` is seconds to wait, if it said.

    ``Retry-After: 0`` means now; when it is missing the host backs off from a second
    (``pointbridge.kit.ratelimit.throttle_wait``)."""

    def __init__(self, message: str = "rate limited", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TransientError(DeliveryError):
    """Timeouts, connection errors, 5xx: the same request may well succeed later."""


class PermanentError(DeliveryError):
    """The platform rejected this item for good (invalid e-mail, suppressed contact...)."""


class ChoiceRequired(PointbridgeError):
    """Installing needs a setting the admin has to pick, e.g. which list to sync to.

    ``options`` are ``(value, label)`` pairs the admin can choose from.
    """

    def __init__(self, setting: str, options: Sequence[tuple[str, str]], message: str) -> None:
        super().__init__(message)
        self.setting = setting
        self.options = list(options)


class WebhookRejected(PointbridgeError):
    """A webhook request is refused; ``status`` is the HTTP status to answer with.

    ``hint`` is optional extra help shown in the response body, such as the exact body the
    platform should be configured to send.
    """

    def __init__(self, status: int, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.hint = hint
