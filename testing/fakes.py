"""Scaffolding for a fake platform's Flask app, so a plugin's fake keeps only its routes.

Every fake answers errors in its platform's JSON shape, checks the platform's credentials
before any route, pages lists, parses JSON bodies into the platform's own 400, keeps typed
custom fields and throttles the platform's way. The pieces::

    errors = JsonErrors(lambda status, message: {"status": "error", "message": message})
    fields = FieldStore({"number": is_number})

    def create_app(account):
        app = Flask("fake_myplatform")
        require_auth(app, lambda: header_is("X-Api-Key", account.api_key),
                     lambda: errors.response(401, "Unauthorized"))

        @app.post("/fields")
        def create_field():
            body = json_body(lambda problem: errors.fail(400, problem))
            ...

    def throttled(wait):  # FakeServer(app, throttled=throttled, error_body=...)
        seconds = str(whole_seconds(wait))
        return too_many_requests({"message": "Slow down"}, {"Retry-After": seconds})

Asynchronous jobs (``Jobs``) answer "pending" to planned polls before they run.
Faults themselves (5xx, 429, dropped connections) are ``FakeServer``'s, planned with
``server.fail_next``; a fake only says what its platform's 429 and 5xx bodies look like.
"""

from __future__ import annotations

import hmac
import itertools
import json
import math
import re
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

from flask import Flask, Response, abort, request
from werkzeug.exceptions import HTTPException

from pointbridge.testing.server import Throttled

T = TypeVar("T")
# Raises the platform's 400 saying what is wrong; never returns.
Reject = Callable[[str], NoReturn]


def json_response(
    payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """``payload`` as a JSON answer (any JSON value: some platforms answer a bare string)."""
    return Response(
        json.dumps(payload), status=status, headers=dict(headers or {}), mimetype="application/json"
    )


class JsonErrors:
    """A platform's error body, built by ``shape(status, *details)``.

    ``fail`` ends the request with that error from anywhere in a route (or a helper it calls),
    ``response`` returns it, ``body`` is the bytes for ``FakeServer(error_body=...)``.
    """

    def __init__(self, shape: Callable[..., Any]) -> None:
        self.shape = shape

    def response(self, status: int, *details: Any, **named: Any) -> Response:
        return json_response(self.shape(status, *details, **named), status)

    def fail(self, status: int, *details: Any, **named: Any) -> NoReturn:
        abort(self.response(status, *details, **named))

    def reject(self, status: int, *details: Any) -> Reject:
        """``fail`` with ``status`` and ``details`` followed by the problem, as the ``reject``
        the helpers below take: ``errors.reject(422)``, ``errors.reject(400, "payload")``."""
        return lambda problem: self.fail(status, *details, problem)

    def body(self, status: int, *details: Any, **named: Any) -> bytes:
        return json.dumps(self.shape(status, *details, **named)).encode()

    def answer_http_errors(self, app: Flask) -> None:
        """Flask's own errors (no such route: 404, wrong method: 405) in this shape, for a
        ``shape(status, message)``; errors raised by ``fail`` pass through untouched."""

        @app.errorhandler(HTTPException)
        def _http_error(exc: HTTPException) -> Response:
            return self.response(exc.code or 500, exc.name)


# --- authentication --------------------------------------------------------------------------


def require_auth(
    app: Flask,
    allowed: Callable[[], bool],
    deny: Callable[[], Response],
    *,
    open_paths: Collection[str] = (),
) -> None:
    """Answer ``deny()`` instead of any route when ``allowed()`` is false (both read
    ``flask.request``), except on ``open_paths`` (a token endpoint, say). The check runs
    before routing, so a wrong key gets the platform's 401 even on a path that does not exist.
    """

    @app.before_request
    def _authenticate() -> Response | None:
        if request.path in open_paths or allowed():
            return None
        return deny()


def _same(given: str, expected: str) -> bool:
    # Constant time, as a real platform compares secrets.
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


def basic_auth_is(username: str, password: str) -> bool:
    """Whether the request carries HTTP Basic with exactly these credentials."""
    auth = request.authorization
    if auth is None or auth.type != "basic":
        return False
    return _same(str(auth.username), username) and _same(str(auth.password), password)


def header_is(name: str, secret: str) -> bool:
    """Whether the request's header ``name`` is exactly ``secret`` (an API-key header)."""
    return _same(request.headers.get(name, ""), secret)


def bearer_token() -> str:
    """The token of an ``Authorization: Bearer`` header, or ``""``."""
    header = request.headers.get("Authorization", "")
    return header.removeprefix("Bearer ") if header.startswith("Bearer ") else ""


# --- request bodies --------------------------------------------------------------------------


def json_body(reject: Reject, *, object_only: bool = True) -> Any:
    """The request's JSON body (``None`` when empty and ``object_only`` is false); anything
    that is not JSON, or not an object when ``object_only``, goes to ``reject(problem)``."""
    try:
        body = json.loads(request.get_data() or b"null")
    except ValueError:
        reject("The request body is not valid JSON.")
    if object_only and not isinstance(body, dict):
        reject("The request body must be a JSON object.")
    return body


def objects(value: Any, reject: Reject, what: str, *, most: int | None = None) -> list[Any]:
    """``value`` when it is a JSON array of objects (at most ``most`` of them), else
    ``reject`` saying what ``what`` should be."""
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        reject(f"{what} must be an array of objects.")
    if most is not None and len(value) > most:
        reject(f"{what} may hold at most {most} items ({len(value)} given).")
    return value


# --- paging ----------------------------------------------------------------------------------


def _query_ints(reject: Reject, defaults: Mapping[str, int]) -> list[int]:
    try:
        return [int(request.args.get(name, default)) for name, default in defaults.items()]
    except ValueError:
        reject(f"{' and '.join(defaults)} must be whole numbers.")


def offset_page(
    items: Sequence[T],
    reject: Reject,
    *,
    offset: str = "offset",
    limit: str = "limit",
    default_limit: int = 100,
    max_limit: int = 1000,
) -> tuple[list[T], int, int]:
    """The slice of ``items`` the query's ``offset`` and ``limit`` ask for (parameter names as
    the platform spells them), with the offset and limit used; out of range → ``reject``."""
    start, size = _query_ints(reject, {offset: 0, limit: default_limit})
    if start < 0 or not 1 <= size <= max_limit:
        reject(f"{limit} must be 1 to {max_limit} and {offset} at least 0.")
    return list(items[start : start + size]), start, size


def numbered_page(
    items: Sequence[T],
    reject: Reject,
    *,
    page: str = "page",
    per_page: str = "per_page",
    default_per_page: int = 50,
    max_per_page: int = 1000,
) -> tuple[list[T], int, int]:
    """Page number ``page`` (from 1) of ``per_page`` items, with the number and size used;
    out of range → ``reject``."""
    number, size = _query_ints(reject, {page: 1, per_page: default_per_page})
    if number < 1 or not 1 <= size <= max_per_page:
        reject(f"{per_page} must be 1 to {max_per_page} and {page} at least 1.")
    return list(items[(number - 1) * size : number * size]), number, size


# --- typed custom fields ---------------------------------------------------------------------


class FieldError(ValueError):
    """A custom-field value the platform refuses; the message is the platform's text."""


class UnknownField(FieldError):
    """A custom field the account does not have."""


class FieldStore(dict[Any, dict[str, Any]]):
    """An account's custom fields: each the dict the platform lists (``{"id", "name", "type"}``
    and whatever ``add`` is given), keyed by a numeric id, or by ``key_of(name)`` for platforms
    that name fields instead (Dotdigital's upper-cased names). It is a plain dict to tests.

    :param checks: field type → whether a value suits it (a type without one takes any value)
    :param type_key: the platform's name for a field's type (Splio's ``data_type``)
    :param ids: where numeric ids come from (pass the account's counter if contacts share it)
    :param unknown: message for a field that does not exist; ``{ref}`` is what was asked for
    :param invalid: message for a wrong value; ``{ref}``, ``{name}``, ``{type}``, ``{value}``
    """

    def __init__(
        self,
        checks: Mapping[str, Callable[[Any], bool]],
        *,
        type_key: str = "type",
        key_of: Callable[[str], Any] | None = None,
        ids: Iterator[int] | None = None,
        unknown: str = "Custom field {ref!r} does not exist.",
        invalid: str = "Custom field {name}: {value!r} is not a valid {type} value.",
    ) -> None:
        super().__init__()
        self.checks = checks
        self.type_key = type_key
        self.key_of = key_of
        self.ids = ids if ids is not None else itertools.count(1)
        self.unknown = unknown
        self.invalid = invalid

    def add(self, name: str, type_: str, **extra: Any) -> dict[str, Any]:
        """A new field (even if one of that name exists: some platforms allow that)."""
        if self.key_of is not None:
            key, spec = self.key_of(name), {"name": self.key_of(name)}
        else:
            key = next(self.ids)
            spec = {"id": key, "name": name}
        self[key] = spec | {self.type_key: type_, **extra}
        return self[key]

    def named(self, name: str) -> dict[str, Any] | None:
        """The first field of that name, in any case; None if there is none."""
        return next((f for f in self.values() if f["name"].lower() == name.lower()), None)

    def resolve(self, ref: Any) -> dict[str, Any]:
        """The field a payload refers to by key (id, or name for named stores)."""
        key = self.key_of(str(ref)) if self.key_of is not None else ref
        spec = self.get(key)
        if spec is None:
            raise UnknownField(self.unknown.format(ref=ref))
        return spec

    def accepts(self, type_: str, value: Any) -> bool:
        check = self.checks.get(type_)
        return check is None or check(value)

    def check(self, ref: Any, value: Any) -> dict[str, Any]:
        """The field ``ref`` names, once ``value`` suits its type (else ``FieldError``)."""
        spec = self.resolve(ref)
        if not self.accepts(spec[self.type_key], value):
            raise FieldError(
                self.invalid.format(
                    ref=ref, name=spec["name"], type=spec[self.type_key], value=value
                )
            )
        return spec

    def by_name(self, values: Mapping[Any, T]) -> dict[str, T]:
        """A contact's stored values (by field key) by field name, for assertions; values of
        fields deleted since are left out."""
        return {self[key]["name"]: value for key, value in values.items() if key in self}


# --- throttling ------------------------------------------------------------------------------


def whole_seconds(wait: float) -> int:
    """A wait as the whole seconds most platforms announce: rounded up, at least 1."""
    return max(1, math.ceil(wait))


def too_many_requests(body: Any, headers: Mapping[str, str]) -> Throttled:
    """A platform's 429 for ``FakeServer(throttled=...)``: its JSON ``body`` and ``headers``."""
    return 429, dict(headers), json.dumps(body).encode()


# --- values ----------------------------------------------------------------------------------

# The loose shape every platform accepts (pointbridge's own rule); a fake of a stricter
# platform keeps its own pattern.
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def is_email(value: Any) -> bool:
    """Whether ``value`` is a string shaped like an e-mail address."""
    return isinstance(value, str) and EMAIL.fullmatch(value) is not None


def nullable(*types: type) -> Callable[[Any], bool]:
    """A ``FieldStore`` check: ``null`` or a JSON value of ``types``. A boolean counts as a
    number only when ``bool`` is listed, though Python takes it for an ``int``."""
    return lambda value: (
        value is None
        or (isinstance(value, types) and (bool in types or not isinstance(value, bool)))
    )


# --- asynchronous jobs -----------------------------------------------------------------------


def job_id(number: int) -> str:
    """The id of the ``number``-th job (from 1) a ``Jobs`` store accepted: a UUID, as
    platforms give, and one a test can name to aim ``fail_next(path=...)`` at its polls."""
    return str(uuid.UUID(int=number))


@dataclass
class Job:
    """One accepted job: what was sent, its status, and its result once it has run."""

    id: str
    payload: Any
    status: str
    polls: int = 0
    result: dict[str, Any] | None = None


class Jobs(dict[str, Job]):
    """A platform's asynchronous jobs (a bulk import answered with an id to poll), by id.

    A job answers ``pending`` to its first ``finish_after_polls`` status polls, then runs on
    the next one: ``run(job)`` does the work and returns ``(status, result)``. Set ``outcome``
    to end jobs with that status instead, unrun (a platform's ``"Failed"``). ``running()``
    counts unfinished jobs, for a platform that limits them.
    """

    def __init__(
        self,
        run: Callable[[Job], tuple[str, dict[str, Any]]],
        *,
        pending: str = "pending",
        finish_after_polls: int = 1,
    ) -> None:
        super().__init__()
        self.run = run
        self.pending = pending
        self.finish_after_polls = finish_after_polls
        self.outcome: str | None = None
        self._numbers = itertools.count(1)

    def start(self, payload: Any) -> Job:
        job = Job(job_id(next(self._numbers)), payload, self.pending)
        self[job.id] = job
        return job

    def poll(self, id_: str) -> Job | None:
        """The job after one more status poll, or None for an id never given."""
        job = self.get(id_)
        if job is None:
            return None
        job.polls += 1
        if job.status == self.pending and job.polls > self.finish_after_polls:
            if self.outcome is not None:
                job.status = self.outcome
            else:
                job.status, job.result = self.run(job)
        return job

    def running(self) -> int:
        return sum(job.status == self.pending for job in self.values())


_BODY_EMAILS = re.compile(rb'"(?:email|emailaddress)"\s*:\s*"([^"\\]+)"')


def emails_in(body: bytes) -> list[str]:
    """The e-mail addresses a bulk JSON body names (``email`` or ``emailaddress`` keys), found
    without parsing it: a few ms for a body of thousands of contacts."""
    return [m.decode() for m in _BODY_EMAILS.findall(body)]


def bench_emails() -> list[str]:
    """The addresses the request's bulk body names. A fake's bench mode answers a bulk call in
    its platform's shape from these alone (no per-item checks, nothing stored), in a few ms at
    any batch size: a benchmark then measures the host, not the fake."""
    return emails_in(request.get_data())
