from __future__ import annotations

import pointbridge_ecomail as plugin
import pytest
from pointbridge_ecomail.fake import FakeEcomail
from pointbridge_ecomail.fields import field_names

from pointbridge import AuthError, ChoiceRequired


def test_bad_key_is_refused_with_where_to_find_the_key(account: FakeEcomail, make_integration):
    with pytest.raises(AuthError) as caught:
        plugin.install(make_integration(api_key="wrong-key"))
    message = str(caught.value)
    assert "Ecomail refused the API key" in message
    assert "For developers" in message
    assert "wrong-key" not in message
    assert account.lists["1"].custom_fields == {}


def test_empty_list_id_offers_the_accounts_lists(make_integration):
    with pytest.raises(ChoiceRequired) as caught:
        plugin.install(make_integration(list_id=""))
    assert caught.value.setting == "list_id"
    assert caught.value.options == [("1", "Newsletter"), ("2", "VIP")]
    assert "Choose the Ecomail list" in str(caught.value)


def test_unknown_list_names_the_list_and_offers_the_real_ones(make_integration):
    with pytest.raises(ChoiceRequired) as caught:
        plugin.install(make_integration(list_id="99"))
    assert "Ecomail has no list 99" in str(caught.value)
    assert [value for value, _ in caught.value.options] == ["1", "2"]


def test_first_install_reports_fields_still_to_come_and_writes_no_contact(
    account: FakeEcomail, integration
):
    result = plugin.install(integration)
    assert result.created == []
    assert result.existing == []
    assert result.data["list_id"] == "1"
    assert result.data["list_name"] == "Newsletter"
    assert result.data["pending_fields"] == field_names("ellity_")
    assert "at the first sync" in result.message
    # Install wrote nothing into the shop's list: no placeholder contact.
    assert account.contacts == {}


def test_first_sync_creates_typed_fields_and_reinstall_finds_them_all(
    account: FakeEcomail, integration, make_contact
):
    plugin.install(integration)
    assert plugin.push_contact(integration, [make_contact(1)]) == []
    fields = account.lists["1"].custom_fields
    assert set(fields) == set(field_names("ellity_"))
    assert fields["ellity_credit"]["type"] == "string"
    assert fields["ellity_credit_num"]["type"] == "int"
    assert fields["ellity_next_expiration_value_num"]["type"] == "int"
    assert fields["ellity_next_expiration_date"]["type"] == "date"
    assert fields["ellity_last_change_date"]["type"] == "date"

    again = plugin.install(integration)
    assert again.created == []
    assert again.existing == field_names("ellity_")
    assert again.data["pending_fields"] == []
    assert "first sync" not in again.message


def test_fields_made_by_the_admin_are_reused_and_wrong_types_flagged(
    account: FakeEcomail, integration
):
    account.add_field("1", "ELLITY_CREDIT", "string")  # Ecomail lower-cases keys
    account.add_field("1", "ellity_credit_num", "string")  # a number made as text
    result = plugin.install(integration)
    assert result.existing == ["ellity_credit", "ellity_credit_num"]
    assert "ellity_credit" not in result.data["pending_fields"]
    assert "ellity_credit_num exists as string, but pointbridge writes int" in result.message


def test_legacy_prefix_names_every_field_with_it(make_integration):
    result = plugin.install(make_integration(prefix="mehub_"))
    assert result.data["pending_fields"][0] == "mehub_credit"
    assert all(name.startswith("mehub_") for name in result.data["pending_fields"])
