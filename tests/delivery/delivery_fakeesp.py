"""A small HTTP email platform for the host's delivery tests and benchmark: plugin and fake.

The plugin (platforms ``fakeesp``, 500 contacts a call and two calls at once, and
``fakeesp_small``, 100 a call, one at a time) upserts
contacts with ``PUT {api_url}/{account}/contacts`` and fires events with
``POST {api_url}/{account}/events``, through ``core.http.ApiClient`` so 401, 429, 5xx, timeouts
and dropped connections map onto the host's errors the way a real plugin's do. Every request
carries ``X-Sender: <pid>`` so a test can tell which worker process sent what.

``FakeEsp`` is the platform: a Flask app (``create_app``) that keeps each account's latest
contact fields per e-mail, counts how often each contact arrived, records events and the
order of arrivals, and can refuse items for good or for a while, or hold one request until the
test lets go (to kill the worker that sent it).

The module is also installed as a throwaway distribution (see ``conftest.py``) so that
``pointbridge worker`` and ``pointbridge export`` subprocesses load the plugin through the
``pointbridge`` entry-point group, exactly like a real plugin.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, request
from marshmallow import Schema, fields

from pointbridge import (
    Capability,
    Contact,
    Event,
    InstallResult,
    Integration,
    ItemFailure,
    PermanentError,
    Platform,
    TransientError,
    hookimpl,
    loyalty_fields,
)
from pointbridge.kit.http import ApiClient

PLATFORMS = {"fakeesp": (500, 2), "fakeesp_small": (100, 1)}  # batch, calls in flight


class FakeEspSettings(Schema):
    api_url = fields.String(required=True)
    api_key = fields.String(required=True, metadata={"secret": True})
    account = fields.String(load_default="main")
    # Short, so that the fake's "slow" fault (answering after the client gave up) is cheap.
    timeout = fields.Float(load_default=0.3)


@hookimpl
def register_platforms(register: Callable[[Platform], None]) -> None:
    for name, (batch, in_flight) in PLATFORMS.items():
        register(
            Platform(
                name=name,
                title=f"Fake ESP ({batch} a call)",
                settings_schema=FakeEspSettings,
                capabilities=frozenset({Capability.EVENTS}),
                max_batch=batch,
                max_event_batch=batch,
                max_in_flight=in_flight,
                description="HTTP test platform of the host's delivery tests.",
                # These tests count each push; the initial sync has tests of its own.
                export_after_install=False,
            )
        )


_clients: dict[tuple[str, str, float], ApiClient] = {}
_clients_lock = threading.Lock()


def _client(integration: Integration) -> ApiClient:
    # One pooled session per account: a new TCP connection per call would cost as much as
    # the call itself in the benchmark.
    settings = integration.settings
    key = (settings["api_url"], settings["api_key"], float(settings["timeout"]))
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = ApiClient(
                settings["api_url"],
                headers={
                    "Authorization": f"Bearer {settings['api_key']}",
                    "X-Sender": str(os.getpid()),
                },
                auth_message="Check the API key",
                timeout=(key[2], key[2]),
            )
        return client


def contact_fields(contact: Contact) -> dict[str, Any]:
    """What the plugin sends for a contact, as JSON types."""
    return {"email": contact.email, "name": contact.first_name, **loyalty_fields(contact)}


def _failures(answer: dict[str, Any], keys: dict[str, int] | None = None) -> list[ItemFailure]:
    failures = []
    for item in answer.get("failed", []):
        key = keys[item["email"]] if keys is not None else int(item["id"])
        error_type = PermanentError if item["permanent"] else TransientError
        failures.append(ItemFailure(key, error_type(item["error"])))
    return failures


@hookimpl
def install(integration: Integration) -> InstallResult:
    _client(integration).get(f"{integration.settings['account']}/fields")
    return InstallResult(created=["points"], message="fake ESP ready")


@hookimpl
def push_contact(integration: Integration, contacts: Sequence[Contact]) -> list[ItemFailure]:
    body = {"contacts": [contact_fields(c) for c in contacts]}
    answer = _client(integration).put(f"{integration.settings['account']}/contacts", json=body)
    return _failures(answer.json(), {c.email: c.customer_id for c in contacts})


@hookimpl
def emit_event(integration: Integration, events: Sequence[Event]) -> list[ItemFailure]:
    body = {
        "events": [
            {"id": e.id, "type": str(e.type), "email": e.email, "data": dict(e.data)}
            for e in events
        ]
    }
    answer = _client(integration).post(f"{integration.settings['account']}/events", json=body)
    return _failures(answer.json())


# the fake platform ------------------------------------------------------------------------


@dataclass
class Arrival:
    kind: str  # "contact" or "event"
    email: str
    sender: str
    at: float  # time.time() when applied
    values: dict[str, Any]


@dataclass
class Account:
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    sends: Counter[str] = field(default_factory=Counter)
    events: dict[int, dict[str, Any]] = field(default_factory=dict)
    arrivals: list[Arrival] = field(default_factory=list)


@dataclass
class Planned:
    """A whole-call answer to give instead of the real one (to ``account``'s calls, or any)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    account: str | None = None


@dataclass
class Hold:
    """Holds the next contacts request until ``release`` is set; it is then not applied."""

    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    sender: str = ""
    account: str = ""
    emails: list[str] = field(default_factory=list)


class FakeEsp:
    def __init__(self, *, latency: float = 0.0, api_key: str = "good") -> None:
        self.latency = latency
        self.api_key = api_key
        self.accounts: defaultdict[str, Account] = defaultdict(Account)
        self.refuse: dict[str, str] = {}  # email -> reason, refused for good
        self.flaky: Counter[str] = Counter()  # email -> times left to refuse for now
        self.fail_next: list[Planned] = []  # whole-call answers to give, in order
        self.refused: list[tuple[str, str, str]] = []  # (kind, email, reason) of refused items
        self.hold: Hold | None = None
        self.calls = 0
        self.lock = threading.Lock()
        # Requests being answered (arrival to response, latency included), and the e-mails
        # in them: how many calls a host had running at once, and whether it ever sent a
        # contact while an earlier request with it was still running (the later one could
        # then be applied first).
        self.running_requests = 0
        self.most_running_requests = 0
        self.running_emails: Counter[str] = Counter()
        self.overlapping: list[str] = []

    def account(self, name: str = "main") -> Account:
        with self.lock:
            return self.accounts[name]

    def _refusal(self, email: str) -> tuple[str, bool] | None:
        if email in self.refuse:
            return self.refuse[email], True
        if self.flaky[email] > 0:
            self.flaky[email] -= 1
            return "try again later", False
        return None

    def _begin(self, emails: list[str]) -> None:
        with self.lock:
            self.running_requests += 1
            self.most_running_requests = max(self.most_running_requests, self.running_requests)
            self.overlapping.extend(e for e in emails if self.running_emails[e])
            self.running_emails.update(emails)
        request.environ["fakeesp.emails"] = emails

    def _end(self, emails: list[str]) -> None:
        with self.lock:
            self.running_requests -= 1
            self.running_emails.subtract(emails)

    def _take_hold(self, account: str, emails: list[str]) -> Hold | None:
        with self.lock:
            hold, self.hold = self.hold, None
        if hold is not None:
            hold.sender = request.headers.get("X-Sender", "")
            hold.account = account
            hold.emails = emails
            hold.arrived.set()
            hold.release.wait(120)
        return hold

    def contacts(self, account: str) -> Response:
        items = request.get_json()["contacts"]
        if self._take_hold(account, [c["email"] for c in items]):
            return _json({"message": "held and dropped"}, 500)
        self._begin([c["email"] for c in items])
        sender = request.headers.get("X-Sender", "")
        failed = []
        with self.lock:
            state = self.accounts[account]
            now = time.time()
            for item in items:
                refusal = self._refusal(item["email"])
                if refusal:
                    self.refused.append(("contact", item["email"], refusal[0]))
                    failed.append(
                        {"email": item["email"], "error": refusal[0], "permanent": refusal[1]}
                    )
                    continue
                state.contacts[item["email"]] = item
                state.sends[item["email"]] += 1
                state.arrivals.append(Arrival("contact", item["email"], sender, now, item))
        return _json({"failed": failed})

    def events(self, account: str) -> Response:
        items = request.get_json()["events"]
        self._begin([e["email"] for e in items])
        sender = request.headers.get("X-Sender", "")
        failed = []
        with self.lock:
            state = self.accounts[account]
            now = time.time()
            for item in items:
                refusal = self._refusal(item["email"])
                if refusal is None and item["email"] not in state.contacts:
                    # As the contract asks of plugins: an event for an unknown contact waits.
                    refusal = ("no such contact yet", False)
                if refusal:
                    failed.append({"id": item["id"], "error": refusal[0], "permanent": refusal[1]})
                    continue
                state.events[item["id"]] = item
                state.arrivals.append(Arrival("event", item["email"], sender, now, item))
        return _json({"failed": failed})


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def create_app(fake: FakeEsp) -> Flask:
    app = Flask(__name__)

    @app.before_request
    def _gate() -> Response | None:
        if request.path.startswith("/_state/"):
            return None
        account = (request.view_args or {}).get("account")
        with fake.lock:
            fake.calls += 1
            planned = next((p for p in fake.fail_next if p.account in (None, account)), None)
            if planned is not None:
                fake.fail_next.remove(planned)
        request.environ["fakeesp.arrived"] = time.monotonic()
        if planned is not None:
            return Response(
                b'{"message": "planned failure"}', status=planned.status, headers=planned.headers
            )
        if request.headers.get("Authorization") != f"Bearer {fake.api_key}":
            return _json({"message": "bad API key"}, 401)
        return None

    @app.after_request
    def _latency(response: Response) -> Response:
        # Every answer leaves ``latency`` after its request arrived, the fake's own
        # processing included: the platform's round trip, whatever the fake costs.
        arrived = request.environ.get("fakeesp.arrived")
        if fake.latency and arrived is not None:
            time.sleep(max(0.0, arrived + fake.latency - time.monotonic()))
        if "fakeesp.emails" in request.environ:
            fake._end(request.environ["fakeesp.emails"])
        return response

    app.add_url_rule("/<account>/fields", "fields", lambda account: _json({"fields": ["points"]}))
    app.add_url_rule("/<account>/contacts", "contacts", fake.contacts, methods=["PUT"])
    app.add_url_rule("/<account>/events", "events", fake.events, methods=["POST"])

    @app.get("/_state/<account>")
    def _state(account: str) -> Response:
        # For the benchmark, whose fake runs in a process of its own; ``?arrivals=0`` leaves
        # out the arrivals (hundreds of thousands after a throughput run).
        state = fake.account(account)
        answer: dict[str, Any] = {"calls": fake.calls, "contacts": len(state.contacts)}
        if request.args.get("arrivals") != "0":
            answer["arrivals"] = [
                [a.kind, a.email, a.at, a.values.get("credit_num")] for a in state.arrivals
            ]
        return _json(answer)

    return app
