"""Checking a webhook's shared secret, for platforms that send it as typed into a header.

Platforms without signed webhooks often let the admin add a header to the request (an
automation's "Webhook" action, a list's webhook settings). The admin puts the integration's
webhook secret there, and ``require_secret`` refuses every request that does not carry it,
telling the admin where to fix it (``where``: the place on the platform the header is set)::

    require_secret(request, "X-Secret-Key", integration.webhook_secret, "the Webhook action")
"""

from __future__ import annotations

import hmac

from pointbridge.contract.errors import WebhookRejected
from pointbridge.contract.platform import WebhookRequest


def require_secret(request: WebhookRequest, header: str, secret: str | None, where: str) -> None:
    """A ``WebhookRejected(401)`` unless ``header`` holds ``secret`` (compared in constant
    time, surrounding spaces ignored). The message never repeats what was sent or expected.
    An integration without a secret accepts nobody rather than everybody."""
    given = (request.header(header) or "").strip()
    if not given:
        raise WebhookRejected(
            401,
            f"The {header} header is missing: in {where} add the header {header} with this "
            "integration's webhook secret from pointbridge.",
        )
    if not secret or not hmac.compare_digest(given.encode(), secret.encode()):
        raise WebhookRejected(
            401,
            f"The {header} header does not match this integration's webhook secret: copy the "
            f"secret from pointbridge into {where} again.",
        )
