"""The small install and batch helpers of the plugin kit: pointbridge.kit.choices,
pointbridge.kit.field_names and pointbridge.kit.bulk."""

from __future__ import annotations

import re

import pytest

from pointbridge import ChoiceRequired, PermanentError, TransientError
from pointbridge.kit.bulk import failures_by_email
from pointbridge.kit.choices import pick
from pointbridge.kit.field_names import prefixed_names
from pointbridge.testing.contacts import sample_contact

LISTS = {"3": {"id": 3, "name": "Customers"}, "4": {"id": 4, "name": "News"}}


def _pick(value: object, lists: dict[str, dict[str, object]] = LISTS) -> object:
    return pick(
        "list_id",
        value,
        find=lists.get,
        options=lambda: [(key, str(item["name"])) for key, item in lists.items()],
        platform="Acme",
        what="list",
        advice="Pick the one with every customer.",
        create="create one in Acme",
    )


def test_pick_returns_what_the_setting_names() -> None:
    assert _pick(" 3 ") == LISTS["3"]
    assert _pick(4) == LISTS["4"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "Choose the Acme list to sync to. Pick the one with every customer."),
        (None, "Choose the Acme list to sync to. Pick the one with every customer."),
        ("9", "Acme has no list 9 (deleted?). Pick the one with every customer."),
    ],
)
def test_pick_asks_the_admin_to_choose(value: object, message: str) -> None:
    with pytest.raises(ChoiceRequired) as caught:
        _pick(value)
    assert caught.value.setting == "list_id"
    assert caught.value.options == [("3", "Customers"), ("4", "News")]
    assert str(caught.value) == message


def test_pick_says_how_to_make_the_first_one() -> None:
    with pytest.raises(ChoiceRequired, match="no list yet: create one in Acme and install again"):
        _pick("", {})


NAME_RULE = {
    "platform": "Acme",
    "max_length": 12,
    "allowed": re.compile(r"[A-Z_]*"),
    "allowed_text": "letters and '_'",
    "case": str.upper,
}


def test_prefixed_names_apply_the_platforms_case() -> None:
    names = prefixed_names("ell_", {"points": "POINTS", "tier": "TIER"}, **NAME_RULE)
    assert names == {"points": "ELL_POINTS", "tier": "ELL_TIER"}


def test_a_prefix_the_platform_refuses_says_what_to_change() -> None:
    with pytest.raises(PermanentError, match=r"allow only letters and '_'\. Change"):
        prefixed_names("ell.", {"points": "POINTS"}, **NAME_RULE)
    with pytest.raises(PermanentError) as caught:
        prefixed_names("loyalty_", {"points": "POINTS", "tier": "TIER"}, **NAME_RULE)
    assert "LOYALTY_POINTS would be 14" in str(caught.value)
    assert "at most 6 characters" in str(caught.value)


def test_refusals_by_email_find_the_customer_sent() -> None:
    contacts = [
        sample_contact(1, "jana@example.com"),
        sample_contact(2, "shared@example.com"),
        sample_contact(3, "Shared@example.com"),
    ]
    refused = [
        ("Shared@example.com", PermanentError("duplicate")),
        ("JANA@example.com ", PermanentError("invalid")),
        ("nobody@example.com", TransientError("unknown")),
    ]
    failures = failures_by_email(contacts, refused)
    assert [(f.key, str(f.error)) for f in failures] == [(3, "duplicate"), (1, "invalid")]
