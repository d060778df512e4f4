"""An integration's host settings as an admin writes them (TOML, the command line): several
expiry reminders, event switches, reward thresholds; and how a tier change's direction is
told. A refusal names what to write instead."""

from __future__ import annotations

import pytest

from pointbridge.host_options import (
    IntegrationError,
    parse_disabled_events,
    parse_field_prefix,
    parse_list_rewards,
    parse_notice_days,
    parse_reward_thresholds,
)
from pointbridge.loyalty.milestones import thresholds_crossed, tier_change


@pytest.mark.parametrize(
    ("written", "reminders"),
    [(7, [7]), ("7", [7]), ("14,3", [14, 3]), ([3, 14], [14, 3]), ("3, 14", [14, 3])],
)
def test_expiry_reminders_are_read_longest_first(written: object, reminders: list[int]) -> None:
    assert parse_notice_days(written) == reminders


@pytest.mark.parametrize("written", ["off", "", None, "Do not send"])
def test_expiry_reminders_can_be_off(written: object) -> None:
    assert parse_notice_days(written) is None


@pytest.mark.parametrize(
    "written", ["14,x", "0", "366", "1,2,3,4,5,6", [True, "a"], "3, 14, 3", [14, "14"]]
)
def test_bad_reminders_say_what_to_write(written: object) -> None:
    with pytest.raises(IntegrationError, match="expiry_notice_days"):
        parse_notice_days(written)


def test_disabled_events_name_known_events_only() -> None:
    assert parse_disabled_events("tier-changed, pin-changed") == ["pin-changed", "tier-changed"]
    assert parse_disabled_events("none") == []
    with pytest.raises(IntegrationError, match="no event tier-change; the events are: "):
        parse_disabled_events(["tier-change"])


def test_reward_thresholds_are_positive_balances() -> None:
    assert parse_reward_thresholds("1000,500") == [500, 1000]
    assert parse_reward_thresholds([500]) == [500]
    for bad in ("0", "500,abc", "-5"):
        with pytest.raises(IntegrationError, match="reward_thresholds"):
            parse_reward_thresholds(bad)


def test_a_threshold_is_crossed_only_upwards_from_below() -> None:
    assert thresholds_crossed([500, 1000], 400, 1200) == 1000
    assert thresholds_crossed([500, 1000], 500, 900) is None  # was there already
    assert thresholds_crossed([500, 1000], 499, 500) == 500
    assert thresholds_crossed([500], 900, 100) is None


@pytest.mark.parametrize(
    ("old", "new", "order", "direction"),
    [
        ("gold", "silver", ["bronze", "silver", "gold"], "down"),
        ("bronze", "gold", ["bronze", "silver", "gold"], "up"),
        ("9", "10", [], "up"),  # numbers, not text: "10" < "9" as text
        (None, "bronze", [], "up"),
        ("bronze", None, [], "down"),
        ("bronze", "gold", [], None),  # nothing says which is higher
    ],
)
def test_a_tier_changes_direction_by_the_shops_order_or_by_number(
    old: str | None, new: str | None, order: list[str], direction: str | None
) -> None:
    change = tier_change((old, None), (new, None), order)
    assert change is not None and change["direction"] == direction


def test_a_renamed_tier_is_no_change() -> None:
    assert tier_change(("2", "Silver"), ("2", "Silber"), []) is None


@pytest.mark.parametrize(
    "hostile", [[1e400], [float("inf")], [True, 2], [3.5], "1_4", "١٤", "1e400", [None]]
)
def test_numbers_that_are_not_whole_numbers_are_refused_not_read_as_others(hostile) -> None:
    """``int()`` read ``true`` as 1, 3.7 as 3, ``1_4`` as 14 and Arabic digits, and raised
    OverflowError (a 500) for 1e400."""
    for parse in (parse_notice_days, parse_reward_thresholds):
        with pytest.raises(IntegrationError):
            parse(hostile)
    with pytest.raises(IntegrationError):
        parse_list_rewards({"1": hostile[0] if isinstance(hostile, list) else hostile})


def test_tier_ids_in_other_scripts_digits_give_no_direction() -> None:
    assert tier_change(("1", "Silver"), ("²", "Odd"), [])["direction"] is None


@pytest.mark.parametrize("prefix", ["x" * 33, "x" * 40_000, "bad\x00", None, 5, ["a", "b"]])
def test_a_field_prefix_the_column_cannot_hold_is_refused(prefix: object) -> None:
    with pytest.raises(IntegrationError, match="field_prefix"):
        parse_field_prefix(prefix)
