"""Pacing in plugin unit tests: the real intervals, recorded instead of slept."""

from __future__ import annotations

import pytest

from pointbridge.kit.ratelimit import Pacer, RateLimit


class RecordingPacer(Pacer):
    """An integration's pacer with the real interval that records its waits instead of sleeping.

    Unit tests call hooks directly, outside the host's one slot per call, so every request
    would really wait its interval; this keeps them fast and lets a test read the pacing.
    ``record_pacing(monkeypatch)`` puts them in place for one test.
    """

    def __init__(self, limit: RateLimit | None) -> None:
        self.waits: list[float] = []
        self.clock = 1000.0
        super().__init__(limit, clock=lambda: self.clock, sleep=self.waits.append)


class RecordingPacers:
    """A stand-in for ``core.ratelimit.pacer_for`` handing out one RecordingPacer per id
    (``made``), and one per id and name for the platform's named limits (``named``)."""

    def __init__(self) -> None:
        self.made: dict[int, RecordingPacer] = {}
        self.named: dict[tuple[int, str], RecordingPacer] = {}

    def pacer_for(
        self, integration_id: int, limit: RateLimit | None, name: str | None = None
    ) -> RecordingPacer:
        if name is not None:
            return self.named.setdefault((integration_id, name), RecordingPacer(limit))
        return self.made.setdefault(integration_id, RecordingPacer(limit))


def record_pacing(monkeypatch: pytest.MonkeyPatch) -> RecordingPacers:
    """Make every ``integration.client(...)`` record its pacing instead of sleeping, for one
    test; returns the pacers, by integration id, to read the waits from."""
    pacers = RecordingPacers()
    monkeypatch.setattr("pointbridge.kit.ratelimit.pacer_for", pacers.pacer_for)
    return pacers
