"""A platform with more than one rate limit: each client paces under the budget it names."""

from __future__ import annotations

import pytest
from flask import Flask
from marshmallow import Schema

from pointbridge import Integration, Platform, RateLimit
from pointbridge.kit.ratelimit import SAFETY, pacer_for
from pointbridge.testing import FakeServer
from pointbridge.testing.contract import sample_integration
from pointbridge.testing.pacing import record_pacing

CONTACTS = RateLimit(20, 1.0)
OTHERS = RateLimit(10, 1.0)
PLATFORM = Platform(
    name="twolimits",
    title="Two limits",
    settings_schema=Schema,
    rate_limit=CONTACTS,
    rate_limits={"others": OTHERS},
)


def _app() -> Flask:
    app = Flask(__name__)
    app.add_url_rule("/<path:anything>", view_func=lambda anything: {"ok": True})
    return app


def _integration(**fields: object) -> Integration:
    return sample_integration(PLATFORM, {}, **fields)


def test_each_client_waits_for_its_own_budget_only(monkeypatch: pytest.MonkeyPatch) -> None:
    pacers = record_pacing(monkeypatch)
    integration = _integration()
    with FakeServer(_app()) as server:
        contacts = integration.client(server.url)
        others = integration.client(server.url, limit="others")
        assert others is not contacts
        for _ in range(3):
            contacts.get("data/contacts/a")
            others.get("data/fields")

    main, named = pacers.made[integration.id], pacers.named[integration.id, "others"]
    assert (main.limit, named.limit) == (CONTACTS, OTHERS)
    # Counted apart: the first request of each waits for nothing (the recording clock stands
    # still), the next two one and two of that budget's intervals.
    assert main.waits == pytest.approx([n / (20 * SAFETY) for n in (1, 2)])
    assert named.waits == pytest.approx([n / (10 * SAFETY) for n in (1, 2)])


def test_clients_naming_one_limit_share_its_pacer() -> None:
    integration = _integration(id=901)
    with FakeServer(_app()) as server:
        first = integration.client(server.url, limit="others")
        # Another URL, or another call's Integration: still the integration's one budget.
        second = _integration(id=901).client(server.url + "/v2", limit="others")
    assert first.pacer is second.pacer is pacer_for(901, OTHERS, "others")
    assert first.pacer is not pacer_for(901, CONTACTS)
    assert pacer_for(902, OTHERS, "others") is not first.pacer


def test_a_limit_the_platform_does_not_declare_is_refused() -> None:
    with pytest.raises(ValueError, match="no rate limit 'contacts'"):
        _integration().client("http://127.0.0.1:9", limit="contacts")


def test_the_host_hands_plugins_the_declared_limits() -> None:
    assert _integration().rate_limits == {"others": OTHERS}
