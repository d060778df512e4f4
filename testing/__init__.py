"""What a plugin author imports to test a plugin against a fake platform over real HTTP."""

from pointbridge.testing.fakes import (
    FieldError,
    FieldStore,
    JsonErrors,
    UnknownField,
    basic_auth_is,
    bearer_token,
    header_is,
    json_body,
    json_response,
    numbered_page,
    offset_page,
    require_auth,
    too_many_requests,
    whole_seconds,
)
from pointbridge.testing.server import FakeServer, Faults, RateLimitRule, RecordedRequest

__all__ = [
    "FakeServer",
    "Faults",
    "FieldError",
    "FieldStore",
    "JsonErrors",
    "RateLimitRule",
    "RecordedRequest",
    "UnknownField",
    "basic_auth_is",
    "bearer_token",
    "header_is",
    "json_body",
    "json_response",
    "numbered_page",
    "offset_page",
    "require_auth",
    "too_many_requests",
    "whole_seconds",
]
