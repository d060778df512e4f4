"""The settings the kit declares for plugins: pointbridge.kit.setting_fields."""

from __future__ import annotations

import pytest
from marshmallow import Schema, ValidationError

from pointbridge import Integration
from pointbridge.kit import setting_fields


class _ListSettings(Schema):
    list_id = setting_fields.optional_id("The list.")


@pytest.mark.parametrize(
    ("given", "loaded"), [({}, None), ("", None), (" ", None), ("7", 7), (7, 7)]
)
def test_an_optional_id_left_empty_is_none(given: object, loaded: int | None) -> None:
    data = given if isinstance(given, dict) else {"list_id": given}
    assert _ListSettings().load(data)["list_id"] == loaded


@pytest.mark.parametrize("given", ["0", "abc", -1])
def test_an_optional_id_is_a_positive_integer(given: object) -> None:
    with pytest.raises(ValidationError):
        _ListSettings().load({"list_id": given})


@pytest.mark.parametrize(
    ("value", "lists"), [(7, {"7"}), (" 12 ", {"12"}), (None, set()), ("", set())]
)
def test_the_written_list_is_the_one_the_setting_names(value: object, lists: set[str]) -> None:
    integration = Integration(1, "shop", "acme", {"list_id": value}, {}, "ellity_", 7, "s", "u")
    assert setting_fields.written_list("list_id")(integration) == lists
