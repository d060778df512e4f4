"""integration.state: what a plugin keeps per integration, dropped when its settings change."""

from __future__ import annotations

import threading
from dataclasses import replace

from pointbridge import Integration
from pointbridge.kit import state
from pointbridge.testing.contract import INTEGRATION_ID


class Token:
    def __init__(self) -> None:
        self.value: str | None = None


class Endpoint:
    def __init__(self) -> None:
        self.url: str | None = None


def _integration(**overrides: object) -> Integration:
    base = Integration(
        id=INTEGRATION_ID,
        name="kit",
        platform="kit",
        settings={"api_key": "key-1", "api_url": "https://api.example"},
        data={},
        field_prefix="ellity_",
        expiry_notice_days=None,
        webhook_secret="s",
        webhook_url="http://pointbridge.test/webhooks/7/t",
    )
    return replace(base, **overrides)


def test_a_later_call_finds_what_an_earlier_one_kept() -> None:
    integration = _integration()
    integration.state(Token).value = "jwt-1"
    # The host hands each hook call a new Integration; the state is the integration's.
    assert _integration().state(Token).value == "jwt-1"
    assert _integration(data={"fields": {}}).state(Token).value == "jwt-1"


def test_each_kind_of_state_and_each_integration_has_its_own() -> None:
    integration = _integration()
    integration.state(Token).value = "jwt-1"
    integration.state(Endpoint).url = "https://r2.example"
    assert integration.state(Token).value == "jwt-1"
    assert integration.state(Endpoint).url == "https://r2.example"
    assert _integration(id=INTEGRATION_ID + 1).state(Token).value is None


def test_new_settings_start_afresh() -> None:
    _integration().state(Token).value = "jwt-of-key-1"
    # Another key, or another URL, may be another account: nothing kept carries over.
    assert _integration(settings={"api_key": "key-2"}).state(Token).value is None
    assert _integration(settings={"api_key": "key-1"}).state(Token).value is None


def test_threads_asking_at_once_share_one_instance() -> None:
    integration = _integration()
    together = threading.Barrier(8, timeout=60)
    seen: list[Token] = []

    def ask() -> None:
        together.wait()
        seen.append(integration.state(Token))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(token) for token in seen}) == 1


def test_forget_drops_one_integration_or_all() -> None:
    first, second = _integration(), _integration(id=INTEGRATION_ID + 1)
    first.state(Token).value = second.state(Token).value = "kept"

    state.forget(first.id)
    assert first.state(Token).value is None
    assert second.state(Token).value == "kept"

    state.forget()
    assert second.state(Token).value is None
