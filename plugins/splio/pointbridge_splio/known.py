"""The contacts Splio confirmed it has, so that their updates skip the bulk create.

Splio's bulk call only creates: for a contact that exists it answers "already exists", and the
update is a PATCH of its own. Remembering the addresses Splio confirmed (a create, a conflict,
a PATCH that worked) makes each later update one PATCH instead of two calls. It is a hint, not
a record: a PATCH answered 404 (the contact was deleted in Splio) forgets the address and
creates the contact again, and an address forgotten to keep the set bounded costs the old two
calls once. Addresses are kept as sent: the host lower-cases them, as Splio wants its keys.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

# About 10 MB of addresses per integration at most; beyond, the least recently used go.
MAX_KNOWN = 100_000


class KnownContacts:
    """A bounded set of e-mails, least recently confirmed dropped first; kept per integration
    (``integration.state(KnownContacts)``) and shared by its threads."""

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
