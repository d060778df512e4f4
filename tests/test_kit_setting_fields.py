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


class _ApiSettings(Schema):
    api_url = setting_fields.api_url("https://api.example.com/v1/", "The API's base URL.")


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com/v1/",
        "http://127.0.0.1:5000",  # a fake or a proxy on loopback
        "http://[::1]:8080/api/",
        "http://localhost",
        "https://api.žluťoučký.cz/",
    ],
)
def test_an_api_url_takes_any_http_address_with_a_host(url: str) -> None:
    assert _ApiSettings().load({"api_url": url}) == {"api_url": url}


@pytest.mark.parametrize(
    "url",
    [
        "ftp://api.example.com/",
        "javascript:alert(1)",
        "api.example.com/v1",
        "https://",
        "https://api example.com/",
        " https://api.example.com/",
        "https://api.example.com/\n",
        "https://api.example.com:99999/",
        "https://api.example.com:port/",
        "http://[::1/",
        7,
    ],
)
def test_an_api_url_that_is_no_web_address_is_refused_and_says_so(url: object) -> None:
    with pytest.raises(ValidationError) as refused:
        _ApiSettings().load({"api_url": url})
    assert refused.value.messages == {"api_url": ["Not a valid URL."]}


def test_an_api_url_left_out_is_the_platforms_real_one() -> None:
    assert _ApiSettings().load({}) == {"api_url": "https://api.example.com/v1/"}
