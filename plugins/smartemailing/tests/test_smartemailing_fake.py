"""The fake behaves like SmartEmailing where the plugin's correctness depends on it."""

from __future__ import annotations

import requests
from pointbridge_smartemailing.fake import FakeSmartEmailing

from pointbridge.testing import FakeServer


def _auth(fake: FakeSmartEmailing) -> tuple[str, str]:
    return (fake.username, fake.api_key)


def test_wrong_credentials_get_401_in_smartemailings_shape(
    fake: FakeSmartEmailing, server: FakeServer
) -> None:
    response = requests.get(f"{server.url}/check-credentials", auth=(fake.username, "nope"))
    assert response.status_code == 401
    assert response.json()["status"] == "error"
    ok = requests.get(f"{server.url}/check-credentials", auth=_auth(fake))
    assert ok.json()["message"] == "Hi there! Your credentials are valid!"


def test_invalid_address_fails_the_import_unless_skipped(
    fake: FakeSmartEmailing, server: FakeServer
) -> None:
    data = [{"emailaddress": "ok@example.cz"}, {"emailaddress": "bad@@example"}]
    strict = requests.post(f"{server.url}/import", json={"data": data}, auth=_auth(fake))
    assert strict.status_code == 422
    assert fake.contacts == {}
    lenient = requests.post(
        f"{server.url}/import",
        json={"settings": {"skip_invalid_emails": True}, "data": data},
        auth=_auth(fake),
    )
    assert lenient.status_code == 201
    assert lenient.json()["contacts_map"] == [
        {"emailaddress": "ok@example.cz", "contact_id": fake.contacts["ok@example.cz"].id}
    ]


def test_customfields_are_paged(fake: FakeSmartEmailing, server: FakeServer) -> None:
    for n in range(7):
        fake.add_customfield(f"f{n}")
    page = requests.get(
        f"{server.url}/customfields", params={"offset": 5, "limit": 5}, auth=_auth(fake)
    ).json()
    assert page["meta"]["total_count"] == 7
    assert [f["name"] for f in page["data"]] == ["f5", "f6"]
