"""The contacts a platform confirmed it has, remembered per integration: a hint that spares a
call.

Splio's bulk call only creates, so an update of a contact it has is a PATCH of its own;
Dotdigital subscribes a contact it creates unless told otherwise, so a customer without
marketing consent needs to know first whether the address exists. Remembering the addresses
the platform confirmed (a create, a conflict, an update or a lookup that found it) makes the
next write of each one call, not two. It is a hint, not a record: a write answered "not found"
(the contact was deleted on the platform) forgets the address, and an address forgotten to
keep the set bounded costs the extra call once. Addresses are kept as sent: the host
lower-cases them.

Use one set per integration, shared by its threads: ``integration.state(KnownContacts)``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

# About 10 MB of addresses per integration at most; beyond, the least recently used go.
MAX_KNOWN = 100_000


class KnownContacts:
    """A bounded set of e-mails, least recently confirmed dropped first."""

    def __init__(self) -> None:
        self._emails: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, email: object) -> bool:
        with self._lock:
            return email in self._emails

    def add(self, email: str) -> None:
        with self._lock:
            self._emails[email] = None
            self._emails.move_to_end(email)
            if len(self._emails) > MAX_KNOWN:
                self._emails.popitem(last=False)

    def discard(self, email: str) -> None:
        with self._lock:
            self._emails.pop(email, None)
