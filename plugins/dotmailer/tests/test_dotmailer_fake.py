"""The fake answers like Dotdigital's documented API, so plugin tests mean something."""

from __future__ import annotations

import pytest
import requests


@pytest.fixture
def api(dd_server, dd_state):
    session = requests.Session()
    session.auth = (dd_state.username, dd_state.password)
    base = dd_server.url

    def call(method: str, path: str, **kwargs):
        return session.request(method, base + path, timeout=5, **kwargs)

    return call


def test_wrong_credentials_get_dotdigitals_401(dd_server) -> None:
    response = requests.get(dd_server.url + "/v2/data-fields", auth=("x", "y"), timeout=5)
    assert response.status_code == 401
    assert response.json() == {"message": "Authorization has been denied for this request."}


def test_data_field_rules(api, dd_state) -> None:
    too_long = api("POST", "/v2/data-fields", json={"name": "A" * 21, "type": "String"})
    assert too_long.status_code == 400
    assert too_long.json()["message"].endswith("ERROR_PARAMETER_INVALID")
    bad_type = api("POST", "/v2/data-fields", json={"name": "X", "type": "numeric"})
    assert bad_type.status_code == 400
    assert (
        api("POST", "/v2/data-fields", json={"name": "pts", "type": "Numeric"}).status_code == 201
    )
    again = api("POST", "/v2/data-fields", json={"name": "PTS", "type": "Numeric"})
    assert again.json() == {"message": "Field already exists. ERROR_NON_UNIQUE_DATAFIELD"}
    assert "PTS" in dd_state.data_fields


def test_v3_enums_are_lower_case_and_fields_must_exist(api, dd_state) -> None:
    pascal = api(
        "PATCH",
        "/contacts/v3/email/a@example.com",
        json={"channelProperties": {"email": {"emailType": "Html"}}},
    )
    assert pascal.status_code == 400
    assert pascal.json()["errorCode"] == "contacts:invalidContacts"
    unknown = api("PATCH", "/contacts/v3/email/a@example.com", json={"dataFields": {"NOPE": 1}})
    assert unknown.status_code == 400
    assert unknown.json()["details"] == [
        {"item": "NOPE", "description": "Data field does not exist"}
    ]
    as_list = api(
        "PATCH",
        "/contacts/v3/email/a@example.com",
        json={"dataFields": [{"key": "FIRSTNAME", "value": "A"}]},
    )
    assert as_list.status_code == 400
    created = api(
        "PATCH",
        "/contacts/v3/email/a@example.com",
        json={
            "dataFields": {"FIRSTNAME": "A"},
            "channelProperties": {"email": {"emailType": "html"}},
        },
    )
    assert created.status_code == 201
    assert created.json()["dataFields"] == {"FIRSTNAME": "A"}
    updated = api("PATCH", "/contacts/v3/email/a@example.com", json={"lists": [7]})
    assert updated.status_code == 200
    assert dd_state.contacts["a@example.com"].lists == {7}


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("2027-01-31", 201),
        ("2027-01-31T00:00:00", 201),
        ("2027-01-31T00:00:00Z", 201),
        (None, 201),  # null clears the field
        ("31.01.2027", 400),
        ("2027-02-30", 400),
        ("", 400),
        (20270131, 400),
    ],
)
def test_a_date_field_takes_iso_8601_or_null(api, dd_state, value, status) -> None:
    dd_state.data_fields.add("EXPIRES", "Date")
    response = api(
        "PATCH", "/contacts/v3/email/a@example.com", json={"dataFields": {"EXPIRES": value}}
    )
    assert response.status_code == status
    if status == 400:
        assert response.json()["details"] == [
            {"item": "EXPIRES", "description": "Invalid value for a Date field"}
        ]


def test_double_opt_in_sends_a_confirmation(api, dd_state) -> None:
    api(
        "PATCH",
        "/contacts/v3/email/b@example.com",
        json={"channelProperties": {"email": {"optInType": "double"}}},
    )
    assert dd_state.optin_emails == ["b@example.com"]
    assert dd_state.contacts["b@example.com"].status == "pendingOptIn"


def test_imports_are_asynchronous(api, dd_state) -> None:
    body = {
        "mergeOption": "overwrite",
        "contacts": [{"matchIdentifier": "email", "identifiers": {"email": "c@example.com"}}],
    }
    accepted = api("PUT", "/contacts/v3/import", json=body)
    assert accepted.status_code == 202
    import_id = accepted.json()["importId"]
    first = api("GET", f"/contacts/v3/import/{import_id}").json()
    assert first == {"importId": import_id, "status": "NotFinished"}
    assert dd_state.contacts == {}
    second = api("GET", f"/contacts/v3/import/{import_id}").json()
    assert second["status"] == "Finished"
    assert second["summary"]["newContacts"] == 1
    assert "c@example.com" in dd_state.contacts
    missing = api("GET", "/contacts/v3/import/nope")
    assert missing.status_code == 404
    assert missing.json()["errorCode"] == "contacts:importNotFound"


def test_too_many_contacts_or_bad_merge_option(api, dd_state) -> None:
    row = {"matchIdentifier": "email", "identifiers": {"email": "d@example.com"}}
    over = api("PUT", "/contacts/v3/import", json={"contacts": [row] * 1001})
    assert over.status_code == 400
    bad = api("PUT", "/contacts/v3/import", json={"mergeOption": "Overwrite", "contacts": [row]})
    assert bad.status_code == 400
