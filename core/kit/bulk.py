"""A platform's answer to a bulk call, item by item, back to the contacts sent.

Bulk endpoints (imports, batch upserts) name the items they refused by what was sent, usually
the e-mail address, not by pointbridge's customer id. ``failures_by_email`` turns those
refusals into the ``ItemFailure``s ``push_contact`` returns. Others name the items they took,
and whoever is left out was skipped: ``failures_unnamed`` fails those.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Sequence

from pointbridge.contract.contact import Contact
from pointbridge.contract.errors import DeliveryError
from pointbridge.contract.platform import ItemFailure


def address_key(email: str) -> str:
    """An address as platforms compare them: trimmed, ignoring case, and in Unicode NFC (as
    pointbridge stores it), whichever form of an accented letter the platform echoes."""
    return unicodedata.normalize("NFC", email.strip()).lower()


def failures_by_email(
    contacts: Sequence[Contact], refused: Iterable[tuple[str, DeliveryError]]
) -> list[ItemFailure]:
    """One ``ItemFailure`` per ``(email, error)`` refusal that names a contact of the batch.

    An address is matched exactly first, then by ``address_key`` (platforms compare addresses so),
    and each contact fails at most once: of two customers sharing an address in different
    case, the copy the platform named fails. Refusals naming no contact sent are left out.
    """
    remaining = list(contacts)
    failures: list[ItemFailure] = []
    for email, error in refused:
        email = email.strip()
        match = next((c for c in remaining if c.email.strip() == email), None) or next(
            (c for c in remaining if address_key(c.email) == address_key(email)), None
        )
        if match is not None:
            remaining.remove(match)
            failures.append(ItemFailure(match.customer_id, error))
    return failures


def failures_unnamed(
    contacts: Sequence[Contact], named: Iterable[str], error: Callable[[Contact], DeliveryError]
) -> list[ItemFailure]:
    """An ``ItemFailure`` with ``error(contact)`` for every contact of the batch whose address
    is not among the ``named`` ones (compared by ``address_key``)."""
    taken = set(map(address_key, named))
    return [
        ItemFailure(contact.customer_id, error(contact))
        for contact in contacts
        if address_key(contact.email) not in taken
    ]
