"""The contacts Splio confirmed it has, so that their updates skip the bulk create.

Splio's bulk call only creates: for a contact that exists it answers "already exists", and the
update is a PATCH of its own. Remembering the addresses Splio confirmed (a create, a conflict,
a PATCH that worked) makes each later update one PATCH instead of two calls. It is a hint, not
a record: a PATCH answered 404 (the contact was deleted in Splio) forgets the address and
creates the contact again, and an address forgotten to keep the set bounded costs the old two
calls once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

# About 10 MB of addresses per integration at most; beyond, the least recently used go.
MAX_KNOWN = 100_000


def contact_key(email: str) -> str:
    """Splio's unique key compares e-mails without case."""
    return email.strip().lower()


class KnownContacts:
    """A bounded set of contact keys, least recently confirmed dropped first; thread-safe."""

    def __init__(self, limit: int = MAX_KNOWN) -> None:
        self.limit = limit
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, email: object) -> bool:
        with self._lock:
            return isinstance(email, str) and contact_key(email) in self._keys

    def add(self, email: str) -> None:
        key = contact_key(email)
        with self._lock:
            self._keys[key] = None
            self._keys.move_to_end(key)
            while len(self._keys) > self.limit:
                self._keys.popitem(last=False)

    def discard(self, email: str) -> None:
        with self._lock:
            self._keys.pop(contact_key(email), None)
