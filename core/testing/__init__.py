"""What a plugin author imports to test a plugin against a fake platform over real HTTP."""

from pointbridge.testing.server import FakeServer, Faults, RateLimitRule, RecordedRequest

__all__ = ["FakeServer", "Faults", "RateLimitRule", "RecordedRequest"]
