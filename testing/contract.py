"""The cases every platform plugin must pass, for a plugin's own test suite to inherit.

As django-anymail's shared webhook tests do, a plugin subclasses ``PluginContract`` in a
``Test…`` class and fills in a small adapter: how to start its fake platform, the settings
that point an integration at it, and what the fake stored. pytest then runs every case below
against the plugin, through the host's own dispatch (``PluginHost``), over real HTTP::

    class TestMyPlatformContract(PluginContract):
        platform_name = "myplatform"

        def fake(self):
            account = FakeAccount(api_key="good")
            return create_app(account), account

        def settings(self, url):
            return {"api_url": url, "api_key": "good"}

        def refused_credentials(self):
            return {"api_key": "wrong"}

        def stored(self, account, email):
            return email in account.contacts

Platforms that declare ``Capability.WEBHOOKS`` also fill in ``webhook_request``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar

import pytest

from pointbridge.contract.contact import Contact
from pointbridge.contract.errors import AuthError, RateLimited, TransientError, WebhookRejected
from pointbridge.contract.platform import (
    Capability,
    InstallResult,
    Integration,
    ItemFailure,
    ListSubscription,
    Platform,
    WebhookRequest,
)
from pointbridge.plugins import PluginHost
from pointbridge.testing.contacts import sample_contact
from pointbridge.testing.pacing import RecordingPacers, record_pacing
from pointbridge.testing.server import FakeServer

WsgiApp = Callable[..., Iterable[bytes]]
INTEGRATION_ID = 7


def sample_integration(
    platform: Platform, settings: Mapping[str, Any], **fields: Any
) -> Integration:
    """An ``Integration`` as the host hands it to a hook: ``settings`` loaded by the platform's
    schema, the platform's rate limit attached; ``fields`` override the rest."""
    values: dict[str, Any] = {
        "id": INTEGRATION_ID,
        "name": f"shop-{platform.name}",
        "platform": platform.name,
        "settings": platform.settings_schema().load(dict(settings)),
        "data": {},
        "field_prefix": "ellity_",
        "expiry_notice_days": 14,
        "webhook_secret": "whsec-contract-test",
        "webhook_url": f"https://loyalty.shop.example/webhooks/{INTEGRATION_ID}/tok",
        "rate_limit": platform.rate_limit,
        "rate_limits": platform.rate_limits,
        **fields,
    }
    return Integration(**values)


class PluginContract:
    """Subclass as ``Test<Platform>Contract`` and fill in the adapter methods."""

    platform_name: ClassVar[str]

    # The adapter ---------------------------------------------------------------------------

    def fake(self) -> tuple[WsgiApp, Any]:
        """A fresh fake account: its WSGI app and the object a test reads it through."""
        raise NotImplementedError

    def server_options(self) -> Mapping[str, Any]:
        """Extra ``FakeServer`` arguments: the platform's ``error_body``, its ``throttled``."""
        return {}

    def settings(self, url: str) -> Mapping[str, Any]:
        """Settings that point an integration at the fake served at ``url``."""
        raise NotImplementedError

    def refused_credentials(self) -> Mapping[str, Any]:
        """Settings to change so that the fake refuses the credentials."""
        raise NotImplementedError

    def stored(self, account: Any, email: str) -> bool:
        """Whether the fake account holds a contact with this e-mail."""
        raise NotImplementedError

    def webhook_request(
        self, integration: Integration, email: str, list_id: str, subscribed: bool
    ) -> WebhookRequest:
        """The request the platform sends when ``email`` joins or leaves ``list_id``."""
        raise NotImplementedError

    def with_wrong_secret(self, request: WebhookRequest) -> WebhookRequest | None:
        """The same request with a wrong platform-level secret or signature; None when the
        platform has none (the webhook URL's token, checked by the host, is the credential)."""
        return None

    # Fixtures -------------------------------------------------------------------------------

    @pytest.fixture
    def host(self) -> PluginHost:
        return PluginHost()

    @pytest.fixture
    def platform(self, host: PluginHost) -> Platform:
        return host.platform(self.platform_name)

    @pytest.fixture(autouse=True)
    def recorded_pacing(self, monkeypatch: pytest.MonkeyPatch) -> RecordingPacers:
        # Hooks are called outside the host's slot, so every request would really wait.
        return record_pacing(monkeypatch)

    @pytest.fixture
    def account_and_server(self) -> Iterator[tuple[Any, FakeServer]]:
        app, account = self.fake()
        with FakeServer(app, **self.server_options()) as server:
            yield account, server

    @pytest.fixture
    def account(self, account_and_server: tuple[Any, FakeServer]) -> Any:
        return account_and_server[0]

    @pytest.fixture
    def server(self, account_and_server: tuple[Any, FakeServer]) -> FakeServer:
        return account_and_server[1]

    @pytest.fixture
    def integration(self, platform: Platform, server: FakeServer) -> Integration:
        return sample_integration(platform, self.settings(server.url))

    @pytest.fixture
    def installed(self, host: PluginHost, integration: Integration) -> Integration:
        result = self._install(host, integration)
        return replace(integration, data={**integration.data, **result.data})

    def _install(self, host: PluginHost, integration: Integration) -> InstallResult:
        result = host.call("install", self.platform_name, integration=integration)
        return result or InstallResult()

    def _push(
        self, host: PluginHost, integration: Integration, contacts: Sequence[Contact]
    ) -> list[ItemFailure]:
        failures = host.call(
            "push_contact", self.platform_name, integration=integration, contacts=contacts
        )
        return list(failures or [])

    # The cases ------------------------------------------------------------------------------

    def test_settings_load_and_the_api_url_defaults_to_the_real_one(
        self, platform: Platform, server: FakeServer
    ) -> None:
        schema = platform.settings_schema()
        loaded = schema.load(dict(self.settings(server.url)))
        assert schema.load(schema.dump(loaded)) == loaded
        url_fields = [name for name in schema.fields if "url" in name.lower()]
        assert url_fields, "the platform's API base URL must be a setting"
        for name in url_fields:
            default = schema.fields[name].load_default
            # A self-hosted platform has no single real URL: then the setting is required.
            assert (isinstance(default, str) and default.startswith("https://")) or (
                schema.fields[name].required
            ), f"{name} defaults to {default!r}, not the platform's real https URL"

    def test_install_twice_creates_nothing_the_second_time(
        self, host: PluginHost, integration: Integration, account: Any
    ) -> None:
        first = self._install(host, integration)
        again = self._install(host, replace(integration, data=dict(first.data)))
        assert again.created == []
        assert set(first.created) <= set(again.existing)

    def test_refused_credentials_raise_auth_error_saying_what_to_check(
        self, host: PluginHost, platform: Platform, server: FakeServer
    ) -> None:
        settings = {**self.settings(server.url), **self.refused_credentials()}
        refused = sample_integration(platform, settings)
        with pytest.raises(AuthError) as raised:
            self._install(host, refused)
        message = str(raised.value)
        assert len(message) > 20, "the admin needs to be told what to check"
        for name in platform.secret_settings():
            value = str(settings.get(name) or "")
            assert not value or value not in message, f"the {name} must not be shown"

    def test_a_full_batch_arrives_whole(
        self, host: PluginHost, platform: Platform, installed: Integration, account: Any
    ) -> None:
        contacts = [sample_contact(n) for n in range(1, platform.max_batch + 1)]
        assert self._push(host, installed, contacts) == []
        assert all(self.stored(account, contact.email) for contact in contacts)

    def test_a_429_is_rate_limited_with_the_platforms_wait(
        self, host: PluginHost, installed: Integration, server: FakeServer
    ) -> None:
        contacts = [sample_contact(1), sample_contact(2)]
        server.fail_next(1, "429", retry_after=7)
        try:
            failures = self._push(host, installed, contacts)
        except RateLimited as limited:
            assert limited.retry_after == pytest.approx(7, abs=1)
            return
        # Or item by item: whatever was not tried waits, costing no attempt.
        assert failures, "a 429 was answered; something must wait"
        assert all(isinstance(f.error, RateLimited) for f in failures)
        assert {f.key for f in failures} <= {c.customer_id for c in contacts}

    @pytest.mark.parametrize("fault", ["503", "500", "drop"])
    def test_a_server_error_or_dropped_connection_is_transient(
        self, host: PluginHost, installed: Integration, server: FakeServer, fault: str
    ) -> None:
        contacts = [sample_contact(1), sample_contact(2)]
        server.fail_next(1, fault)
        try:
            failures = self._push(host, installed, contacts)
        except TransientError:
            return
        assert failures, f"a {fault} was answered; something must be retried"
        assert all(isinstance(f.error, TransientError) for f in failures)
        assert {f.key for f in failures} <= {c.customer_id for c in contacts}

    def test_a_webhook_subscription_is_a_list_subscription(
        self, host: PluginHost, platform: Platform, integration: Integration
    ) -> None:
        if not platform.supports(Capability.WEBHOOKS):
            pytest.skip(f"{platform.title} takes no webhooks")
        for subscribed in (True, False):
            request = self.webhook_request(integration, "jana@example.com", "3", subscribed)
            actions = host.call(
                "handle_webhook", self.platform_name, integration=integration, request=request
            )
            assert list(actions) == [
                ListSubscription("jana@example.com", "3", subscribed, actions[0].raw)
            ]

    def test_a_webhook_with_a_wrong_secret_is_a_401(
        self, host: PluginHost, platform: Platform, integration: Integration
    ) -> None:
        if not platform.supports(Capability.WEBHOOKS):
            pytest.skip(f"{platform.title} takes no webhooks")
        good = self.webhook_request(integration, "jana@example.com", "3", True)
        forged = self.with_wrong_secret(good)
        if forged is None:
            pytest.skip(f"{platform.title}'s webhooks carry no secret of their own")
        with pytest.raises(WebhookRejected) as raised:
            host.call("handle_webhook", self.platform_name, integration=integration, request=forged)
        assert raised.value.status == 401 and raised.value.message

    def test_a_malformed_webhook_is_a_400_saying_why(
        self, host: PluginHost, platform: Platform, integration: Integration
    ) -> None:
        if not platform.supports(Capability.WEBHOOKS):
            pytest.skip(f"{platform.title} takes no webhooks")
        good = self.webhook_request(integration, "jana@example.com", "3", True)
        for body in (b"", b"{not json", b"[" * 100_000, b'{"listId": ' + b"9" * 5000 + b"}"):
            with pytest.raises(WebhookRejected) as raised:
                host.call(
                    "handle_webhook",
                    self.platform_name,
                    integration=integration,
                    request=replace(good, body=body),
                )
            assert raised.value.status == 400 and raised.value.message


__all__ = ["PluginContract", "sample_integration"]
