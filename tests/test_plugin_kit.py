"""The plugin kit: the host-owned HTTP client, one-request-per-item sending, planned faults in
the fake server, and an install that waits out a platform's 429s."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
import requests
from flask import Flask

from pointbridge import (
    InstallResult,
    Integration,
    RateLimit,
    RateLimited,
    TransientError,
    hookimpl,
    send_each,
)
from pointbridge.contract.errors import AuthError, PermanentError
from pointbridge.kit.fields import ExistingField, FieldExists, FieldSpec, ensure_fields
from pointbridge.services import Services
from pointbridge.storage.models import IntegrationStatus
from pointbridge.testing import FakeServer
from pointbridge.testing.inprocess import InProcessPlatform
from pointbridge.testing.pacing import record_pacing


def _integration(**overrides: object) -> Integration:
    base = Integration(
        id=41,
        name="kit",
        platform="kit",
        settings={},
        data={},
        field_prefix="ellity_",
        expiry_notice_days=None,
        webhook_secret="s",
        webhook_url="http://pointbridge.test/webhooks/41/t",
        rate_limit=RateLimit(calls=2, per_seconds=1.0),
    )
    return replace(base, **overrides)


def test_send_each_stops_at_a_429_and_hands_back_the_untried_rest() -> None:
    sent: list[int] = []

    def send(item: int) -> None:
        if item == 2:
            raise PermanentError("refused")
        if item == 3:
            raise TransientError("timed out")
        if item == 4:
            raise RateLimited("429", retry_after=9)
        sent.append(item)

    failures = send_each([1, 2, 3, 4, 5, 6], send, key=lambda item: item * 10)

    assert sent == [1]
    assert [(f.key, type(f.error).__name__) for f in failures] == [
        (20, "PermanentError"),
        (30, "TransientError"),
        (40, "RateLimited"),
        (50, "RateLimited"),
        (60, "RateLimited"),
    ]
    assert all(f.error.retry_after == 9 for f in failures[2:])


def test_send_each_lets_refused_credentials_stop_the_call() -> None:
    def send(item: int) -> None:
        raise AuthError("Check the API key")

    with pytest.raises(AuthError):
        send_each([1, 2], send, key=int)


def _echo_app() -> Flask:
    app = Flask("echo")

    @app.get("/v1/whoami")
    def whoami() -> dict[str, str]:
        from flask import request

        return {"key": request.headers.get("X-Key", "")}

    return app


def test_the_host_keeps_one_paced_client_per_integration_and_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pacers = record_pacing(monkeypatch)
    with FakeServer(_echo_app()) as server:
        integration = _integration()
        first = integration.client(server.url + "/v1", headers={"X-Key": "a"})
        again = integration.client(server.url + "/v1", headers={"X-Key": "a"})
        assert first is again
        assert first.get("whoami").json() == {"key": "a"}
        assert again.get("whoami").json() == {"key": "a"}

        rotated = integration.client(server.url + "/v1", headers={"X-Key": "b"})
        assert rotated is not first and rotated.get("whoami").json() == {"key": "b"}
        # A call still holding the old client (another thread's) can finish with it.
        assert first.get("whoami").json() == {"key": "a"}
        unpaced = integration.client(server.url + "/v1", headers={"X-Key": "b"}, paced=False)
        assert unpaced is not rotated and unpaced.pacer is None
        unpaced.get("whoami")

    # Paced under the platform's declared limit, without the plugin naming it: 2 a second.
    pacer = pacers.made[41]
    assert pacer.limit == RateLimit(calls=2, per_seconds=1.0)
    # The recording clock stands still, so each wait is one interval more than the last.
    assert pacer.waits == pytest.approx([1 / 1.9, 2 / 1.9, 3 / 1.9])


def test_planned_faults_answer_the_next_requests_in_order_then_the_app_does() -> None:
    with FakeServer(_echo_app()) as server:
        server.fail_next(1, "429", retry_after=7)
        server.fail_next(1, "503")
        server.fail_next(1, "500", path="/elsewhere")
        answers = [requests.get(server.url + "/v1/whoami", timeout=10) for _ in range(3)]

    assert [a.status_code for a in answers] == [429, 503, 200]
    assert answers[0].headers["Retry-After"] == "7"


def test_an_unknown_planned_fault_is_refused() -> None:
    with FakeServer(_echo_app()) as server, pytest.raises(ValueError, match="unknown fault"):
        server.fail_next(1, "teapot")


class ThrottledInstall(InProcessPlatform):
    """Answers 429 to its first ``throttled`` installs, as Dotdigital does to a burst."""

    name = "busy"

    def __init__(self, throttled: int) -> None:
        self.throttled = throttled
        self.calls = 0

    @hookimpl
    def install(self, integration: Integration) -> InstallResult:
        self.calls += 1
        if self.calls <= self.throttled:
            raise RateLimited("429 Too Many Requests", retry_after=None if self.calls == 1 else 3)
        return InstallResult(created=["points"])


def _install(services: Services, throttled: int) -> tuple[list[float], Callable[[], InstallResult]]:
    services.host.register(ThrottledInstall(throttled), "busy")
    with services.db.transaction() as session:
        services.integrations.add(session, "busy", "busy", {})
    waits: list[float] = []
    return waits, lambda: services.integrations.install(services.db, "busy", sleep=waits.append)


def test_install_waits_out_a_platforms_429s_and_then_succeeds(services: Services) -> None:
    waits, install = _install(services, throttled=3)

    assert install().created == ["points"]
    # No Retry-After: 1 s; then the platform's own 3 s, twice.
    assert waits == [1.0, 3.0, 3.0]
    with services.db.read() as session:
        assert services.integrations.get(session, "busy").status == IntegrationStatus.ACTIVE


def test_install_reports_a_platform_that_keeps_refusing(services: Services) -> None:
    waits, install = _install(services, throttled=100)

    with pytest.raises(RateLimited):
        install()
    assert len(waits) == 7


def test_ensure_fields_reuses_by_name_creates_the_rest_and_warns_on_a_type_mismatch() -> None:
    wanted = [FieldSpec("ELLITY_POINTS", "Numeric"), FieldSpec("ELLITY_TIER", "String")]
    created: list[str] = []

    def create(spec: FieldSpec) -> int:
        created.append(spec.name)
        return 99

    first = ensure_fields(wanted, [ExistingField("ellity_points", "String", 5)], create)

    assert created == ["ELLITY_TIER"]
    assert first.ids == {"ELLITY_POINTS": 5, "ELLITY_TIER": 99}
    assert (first.created, first.existing) == (["ELLITY_TIER"], ["ELLITY_POINTS"])
    assert len(first.warnings) == 1 and "exists as String" in first.warnings[0]

    again = ensure_fields(
        wanted,
        [ExistingField("ELLITY_POINTS", "numeric", 5), ExistingField("ELLITY_TIER", "String", 99)],
        create,
    )
    assert created == ["ELLITY_TIER"] and again.created == [] and again.warnings == []


def test_a_field_created_meanwhile_counts_as_existing() -> None:
    def create(spec: FieldSpec) -> int:
        if spec.name == "ELLITY_TIER":
            raise FieldExists(7)  # another install was quicker
        return 99

    wanted = [FieldSpec("ELLITY_POINTS", "Numeric"), FieldSpec("ELLITY_TIER", "String")]
    ensured = ensure_fields(wanted, [], create)

    assert (ensured.created, ensured.existing) == (["ELLITY_POINTS"], ["ELLITY_TIER"])
    assert ensured.ids == {"ELLITY_POINTS": 99, "ELLITY_TIER": 7}


def test_send_each_stops_trying_once_the_platform_looks_down() -> None:
    timeouts: list[int] = []

    def send(item: int) -> None:
        timeouts.append(item)
        raise TransientError("timed out")

    failures = send_each(
        [1, 2, 3, 4], send, key=lambda item: item, looks_down=lambda: len(timeouts) >= 2
    )

    assert timeouts == [1, 2]
    assert [type(f.error).__name__ for f in failures] == [
        "TransientError",
        "TransientError",
        "RateLimited",
        "RateLimited",
    ]
