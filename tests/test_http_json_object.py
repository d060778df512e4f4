"""pointbridge.kit.http.json_object: a 2xx body that is not a JSON object is worth another try."""

from __future__ import annotations

import pytest
import requests
from flask import Flask

from pointbridge import TransientError
from pointbridge.kit.http import ApiClient, json_object
from pointbridge.testing import FakeServer


def _app() -> Flask:
    app = Flask(__name__)
    app.add_url_rule("/object", "object", lambda: {"token": "t"})
    app.add_url_rule("/list", "list", lambda: [1, 2])
    app.add_url_rule("/page", "page", lambda: "<html>Down for maintenance</html>")
    return app


def _get(path: str) -> requests.Response:
    with FakeServer(_app()) as server:
        return ApiClient(server.url).get(path, params={"api_key": "secret-in-query"})


def test_an_object_is_returned_as_it_came() -> None:
    assert json_object(_get("object")) == {"token": "t"}


@pytest.mark.parametrize("path", ["list", "page"])
def test_anything_else_is_transient_and_names_the_request_not_its_query(path: str) -> None:
    with pytest.raises(TransientError) as raised:
        json_object(_get(path))
    assert str(raised.value).startswith(f"GET /{path}: not a JSON object (HTTP 200")
    assert "secret-in-query" not in str(raised.value)
