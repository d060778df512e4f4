"""Install settings the admin picks from the account: which list, audience or address book.

An empty setting, or one naming something the account no longer has, cannot be guessed:
``pick`` raises ``ChoiceRequired`` with the account's own options, so the admin chooses one
and installs again::

    book = pick(
        "list_id",
        integration.settings.get("list_id"),
        find=client.list_or_none,  # the chosen one, or None when it is gone
        options=lambda: [(str(item["id"]), item["name"]) for item in client.lists()],
        platform="MyPlatform",
        what="contact list",
        advice="Pick the list that holds all of the shop's customers.",
        create="create one in MyPlatform (Contacts → Lists)",
    )
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from pointbridge.contract.errors import ChoiceRequired

Found = TypeVar("Found")


def pick(
    setting: str,
    value: Any,
    *,
    find: Callable[[str], Found | None],
    options: Callable[[], Iterable[tuple[str, str]]],
    platform: str,
    what: str,
    advice: str = "",
    create: str = "",
) -> Found:
    """What ``find`` returns for the setting's ``value``; when the value is empty or ``find``
    returns None, ``ChoiceRequired`` for ``setting`` listing ``options()`` as ``(value,
    label)`` pairs. ``advice`` says which one to choose; ``create`` how to make one, for an
    account that has none yet."""
    chosen = str(value or "").strip()
    if chosen:
        found = find(chosen)
        if found is not None:
            return found
        message = f"{platform} has no {what} {chosen} (deleted?)."
    else:
        message = f"Choose the {platform} {what} to sync to."
    listed = list(options())
    parts = [message, advice]
    if not listed and create:
        parts.append(f"The account has no {what} yet: {create} and install again.")
    raise ChoiceRequired(setting, listed, " ".join(part for part in parts if part))
