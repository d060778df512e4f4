"""Pacing in plugin unit tests: the real intervals, recorded instead of slept."""

from __future__ import annotations

from pointbridge.ratelimit import Pacer, RateLimit


class RecordingPacer(Pacer):
    """An integration's pacer with the real interval that records its waits instead of sleeping.

    Unit tests call hooks directly, outside the host's one slot per call, so every request
    would really wait its interval; this keeps them fast and lets a test read the pacing.
    Monkeypatch the plugin's ``pacer_for`` with ``RecordingPacers().pacer_for``.
    """

    def __init__(self, limit: RateLimit | None) -> None:
        self.waits: list[float] = []
        self.clock = 1000.0
        super().__init__(limit, clock=lambda: self.clock, sleep=self.waits.append)


class RecordingPacers:
    """A stand-in for ``core.ratelimit.pacer_for`` handing out one RecordingPacer per id."""

    def __init__(self) -> None:
        self.made: dict[int, RecordingPacer] = {}

    def pacer_for(self, integration_id: int, limit: RateLimit | None) -> RecordingPacer:
        return self.made.setdefault(integration_id, RecordingPacer(limit))
